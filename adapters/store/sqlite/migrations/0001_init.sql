CREATE TABLE threads (
	user       TEXT PRIMARY KEY,
	thread_id  TEXT NOT NULL,
	created_at INTEGER NOT NULL -- unix milliseconds
);

CREATE TABLE deliveries (
	key     TEXT PRIMARY KEY,
	seen_at INTEGER NOT NULL -- unix milliseconds
);

CREATE INDEX deliveries_seen_at ON deliveries (seen_at);
