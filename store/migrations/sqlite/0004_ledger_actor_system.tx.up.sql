-- Work that no user asked for (an import, the default quota of a new
-- account, later executors) is recorded as done by the system, under a
-- name, rather than by a user who did not do it: an entry names exactly one
-- of actor_id and actor_system. SQLite cannot drop the NOT NULL of
-- actor_id in place, so the table is built again, with its rows, index and
-- triggers. Nothing references ledger, and dropping a table fires no
-- trigger, so the append-only triggers do not stand in the way.
CREATE TABLE ledger_new (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id),
    job_id       INTEGER REFERENCES jobs (id),
    actor_id     INTEGER REFERENCES users (id),
    kind         TEXT    NOT NULL CHECK (kind IN ('grant', 'set', 'charge', 'refund')),
    delta        INTEGER NOT NULL, -- milli-hours
    balance      INTEGER NOT NULL CHECK (balance >= 0),
    reason       TEXT    NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    actor_system TEXT CHECK (actor_system <> ''),
    CONSTRAINT ledger_one_actor CHECK ((actor_id IS NULL) <> (actor_system IS NULL))
);

--bun:split

INSERT INTO ledger_new (id, user_id, job_id, actor_id, kind, delta, balance, reason, created_at)
SELECT id, user_id, job_id, actor_id, kind, delta, balance, reason, created_at FROM ledger ORDER BY id;

--bun:split

DROP TABLE ledger;

--bun:split

ALTER TABLE ledger_new RENAME TO ledger;

--bun:split

CREATE INDEX ledger_user_id ON ledger (user_id, id);

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
