-- Events carried by NATS JetStream (`[scale]`): the API publishes a batch in parts, one per
-- partition of the customers it names; the ingest worker owning a partition (its lease is the
-- `leases` row `ingest-partition:<stream>:<p>`) applies each part in one unit of work.

-- Per partition, the stream sequence after the last message applied: moved in the same unit
-- of work as the effect, so a message delivered again (its ack was lost, its owner died
-- before acking) is recognised and skipped.
CREATE TABLE ingest_offsets (
    stream     TEXT NOT NULL,
    partition  INTEGER NOT NULL,
    next_seq   INTEGER NOT NULL,
    PRIMARY KEY (stream, partition)
);

-- Every part applied, with what it did (indices are the request's): a part published again
-- after the stream's de-duplication window is applied once, and the API reads the answer of
-- a part whose reply it missed (and `GET /v1/event-batches/{id}` the whole batch).
CREATE TABLE ingest_parts (
    tenant_id     BLOB NOT NULL REFERENCES tenants(id),
    batch_id      BLOB NOT NULL,
    part          INTEGER NOT NULL,
    parts         INTEGER NOT NULL,
    stream        TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    summary_json  TEXT NOT NULL,
    done_at       INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, batch_id, part)
);

-- A message that failed to apply again and again (or could not be read): kept whole, with
-- why, and the partition moves on. Visible to operators, never silently dropped.
CREATE TABLE ingest_dead_letters (
    stream     TEXT NOT NULL,
    partition  INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    payload    TEXT NOT NULL,
    error      TEXT NOT NULL,
    at         INTEGER NOT NULL,
    PRIMARY KEY (stream, seq)
);
