-- The store of callrec-gateway: one row per object in its stored record form, the change log,
-- and the log's head, whose row lock orders every commit of every gateway.

CREATE TABLE log_head (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    sequence bigint NOT NULL
);
INSERT INTO log_head (id, sequence) VALUES (true, 0);

-- `entry` is json, not jsonb: the entry's text is kept as written, so that exports taken from
-- either store are the same byte for byte. `touched` names the objects the commit changed, so
-- that another gateway can read their current records to catch up.
CREATE TABLE change_log (
    sequence bigint PRIMARY KEY,
    at_ms bigint NOT NULL,
    entry json NOT NULL,
    touched jsonb NOT NULL DEFAULT '[]'
);

CREATE TABLE platforms (
    name text PRIMARY KEY,
    record jsonb NOT NULL
);

-- The system default ('default', a JSON string) and the properties ('properties').
CREATE TABLE settings (
    name text PRIMARY KEY,
    record jsonb NOT NULL
);

CREATE TABLE tenants (
    tenant_id text PRIMARY KEY,
    record jsonb NOT NULL
);

CREATE TABLE groups (
    tenant_id text NOT NULL,
    group_id text NOT NULL,
    record jsonb NOT NULL,
    PRIMARY KEY (tenant_id, group_id)
);

CREATE TABLE users (
    username text PRIMARY KEY,
    record jsonb NOT NULL
);

CREATE TABLE sessions (
    id text PRIMARY KEY,
    record jsonb NOT NULL
);

CREATE TABLE secrets (
    name text PRIMARY KEY,
    value bytea NOT NULL
);

-- Failed logins per username, counted by every gateway (the lockout): failures in the window
-- that began at window_start_ms, attempts whose password check is under way, the lock.
CREATE TABLE login_failures (
    username text PRIMARY KEY,
    failures integer NOT NULL DEFAULT 0,
    in_flight integer NOT NULL DEFAULT 0,
    window_start_ms bigint,
    locked_until_ms bigint
);
