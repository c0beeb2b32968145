-- Each running gateway holds a lease (ports.Leases) until expires_at (unix
-- milliseconds), renewing it while it runs; a released lease is deleted.
CREATE TABLE instances (
	id         TEXT PRIMARY KEY,
	expires_at INTEGER NOT NULL
);

-- The instance that took each delivery (FirstSeen, or TakeOver since). A
-- pending delivery whose owner holds no live lease was left behind: it may
-- be taken over, and it is reported as never answered. Deliveries recorded
-- before this migration have no owner, which counts as stopped.
ALTER TABLE deliveries ADD COLUMN owner TEXT;
