-- Each running gateway holds a lease (ports.Leases) until expires_at, by the
-- database's clock, renewing it while it runs; a released lease is deleted.
CREATE TABLE instances (
    id         text PRIMARY KEY,
    expires_at timestamptz NOT NULL
);

-- The instance that took each delivery (FirstSeen, or TakeOver since). A
-- pending delivery whose owner holds no live lease was left behind: it may
-- be taken over, and it is reported as never answered. Deliveries recorded
-- before this migration have no owner, which counts as stopped. (Instances
-- still running the previous version during a rolling upgrade record none
-- either: a retry of a message one of them is still answering may then be
-- answered by an upgraded instance too.)
ALTER TABLE deliveries ADD COLUMN owner text;
