-- Gateways that answer reads from memory while their lease lasts: until when (the database's
-- clock), and the last log position each has installed. A commit is acknowledged once every
-- gateway whose lease has not ended has installed it.

CREATE TABLE read_leases (
    gateway text PRIMARY KEY,
    seen bigint NOT NULL,
    until timestamptz NOT NULL
);
