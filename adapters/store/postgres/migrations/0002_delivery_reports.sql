-- What became of each delivery: delivered_at once it was answered
-- (ThreadStore.Delivered), reported_at once Abandoned returned it. A delivery
-- with neither is pending.
ALTER TABLE deliveries
    ADD COLUMN delivered_at timestamptz,
    ADD COLUMN reported_at  timestamptz;

-- Deliveries recorded before this migration were never marked: what became
-- of them is unknown, so they count as reported rather than as a day's
-- worth of lost answers. (Instances still running the previous version
-- during a rolling upgrade do not mark their deliveries either: those are
-- reported as never delivered by the upgraded instances.)
UPDATE deliveries SET reported_at = seen_at;

-- Abandoned looks for old pending deliveries only.
CREATE INDEX deliveries_pending ON deliveries (seen_at) WHERE delivered_at IS NULL AND reported_at IS NULL;
