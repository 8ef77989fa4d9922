CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('admin', 'user')),
    balance       INTEGER NOT NULL CHECK (balance >= 0), -- milli-hours
    created_at    TIMESTAMP NOT NULL
);

--bun:split

-- Usernames are unique without regard to case; they are ASCII, which lower() folds.
CREATE UNIQUE INDEX users_username_key ON users (lower(username));

--bun:split

CREATE TABLE jobs (
    id              INTEGER PRIMARY KEY,
    user_id         INTEGER NOT NULL REFERENCES users (id),
    command         TEXT    NOT NULL,
    gpu_type        TEXT    NOT NULL,
    estimated       INTEGER NOT NULL, -- milli-hours charged at submission
    actual          INTEGER,          -- milli-hours finally charged, when known
    status          TEXT    NOT NULL CHECK (status IN
                        ('PENDING', 'APPROVED', 'RUNNING', 'COMPLETED', 'FAILED', 'REJECTED', 'CANCELLED')),
    idempotency_key TEXT,
    created_at      TIMESTAMP NOT NULL,
    updated_at      TIMESTAMP NOT NULL
);

--bun:split

CREATE UNIQUE INDEX jobs_idempotency_key ON jobs (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL;

--bun:split

CREATE INDEX jobs_user_id ON jobs (user_id, id);

--bun:split

CREATE INDEX jobs_status ON jobs (status, id);

--bun:split

CREATE TABLE ledger (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id),
    job_id     INTEGER REFERENCES jobs (id),
    actor_id   INTEGER NOT NULL REFERENCES users (id),
    kind       TEXT    NOT NULL CHECK (kind IN ('grant', 'set', 'charge', 'refund')),
    delta      INTEGER NOT NULL, -- milli-hours
    balance    INTEGER NOT NULL CHECK (balance >= 0),
    reason     TEXT    NOT NULL,
    created_at TIMESTAMP NOT NULL
);

--bun:split

CREATE INDEX ledger_user_id ON ledger (user_id, id);

--bun:split

CREATE INDEX ledger_job_id ON ledger (job_id) WHERE job_id IS NOT NULL;

--bun:split

-- The ledger is append-only: the database itself refuses to rewrite history.
CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger
BEGIN
    SELECT RAISE(ABORT, 'ledger is append-only');
END;

--bun:split

CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger
BEGIN
    SELECT RAISE(ABORT, 'ledger is append-only');
END;

--bun:split

CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
