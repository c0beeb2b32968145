-- One conversation thread per user: the primary key makes the first writer win.
CREATE TABLE threads (
    user_id    text PRIMARY KEY,
    thread_id  text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Webhook deliveries already processed (idempotency keys, MessageSids).
CREATE TABLE deliveries (
    key     text PRIMARY KEY,
    seen_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX deliveries_seen_at ON deliveries (seen_at);
