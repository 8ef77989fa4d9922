-- The accounting model: credits (milli-credits; one credit is one GPU-hour
-- at rate 1), a GPU catalogue with rates, and allocations that start and
-- end. A balance is no longer a column: it is the sum of the remaining
-- credits of an account's active allocations, which the time of a query
-- decides. Existing balances become each account's default allocation,
-- which the existing ledger entries are attributed to: hours at rate 1
-- are credits to the unit.

-- Balances and the ledger are kept by account; each user has a personal
-- one (projects will hold accounts too).
CREATE TABLE accounts (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER UNIQUE REFERENCES users (id),
    created_at TIMESTAMP NOT NULL
);

--bun:split

INSERT INTO accounts (user_id, created_at) SELECT id, created_at FROM users ORDER BY id;

--bun:split

CREATE TABLE gpu_types (
    id               INTEGER PRIMARY KEY,
    name             TEXT    NOT NULL,
    description      TEXT    NOT NULL,
    rate             INTEGER NOT NULL CHECK (rate > 0),                 -- milli-credits per GPU-hour
    max_gpus_per_job INTEGER NOT NULL CHECK (max_gpus_per_job >= 0),   -- 0: no limit of its own
    enabled          INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    created_at       TIMESTAMP NOT NULL,
    updated_at       TIMESTAMP NOT NULL
);

--bun:split

-- Names are ASCII and unique without regard to case, which lower() folds.
CREATE UNIQUE INDEX gpu_types_name_key ON gpu_types (lower(name));

--bun:split

CREATE TABLE allocations (
    id           INTEGER PRIMARY KEY,
    account_id   INTEGER NOT NULL REFERENCES accounts (id),
    amount       INTEGER NOT NULL CHECK (amount >= 0),    -- milli-credits given by grant and set entries
    remaining    INTEGER NOT NULL CHECK (remaining >= 0), -- the sum of its ledger entries
    gpu_types    TEXT,                                    -- the scope, one name a line; NULL: every type
    starts_at    TIMESTAMP NOT NULL,
    expires_at   TIMESTAMP,
    is_default   INTEGER NOT NULL CHECK (is_default IN (0, 1)),
    reason       TEXT    NOT NULL,
    actor_id     INTEGER REFERENCES users (id),
    actor_system TEXT CHECK (actor_system <> ''),
    created_at   TIMESTAMP NOT NULL,
    CONSTRAINT allocations_one_actor CHECK ((actor_id IS NULL) <> (actor_system IS NULL)),
    CONSTRAINT allocations_default CHECK (NOT is_default OR (gpu_types IS NULL AND expires_at IS NULL))
);

--bun:split

CREATE INDEX allocations_account_id ON allocations (account_id, id);

--bun:split

CREATE UNIQUE INDEX allocations_one_default ON allocations (account_id) WHERE is_default = 1;

--bun:split

INSERT INTO allocations (account_id, amount, remaining, gpu_types, starts_at, expires_at, is_default, reason, actor_system, created_at)
SELECT a.id,
       (SELECT COALESCE(SUM(l.delta), 0) FROM ledger l WHERE l.user_id = u.id AND l.kind IN ('grant', 'set')),
       u.balance, NULL, u.created_at, NULL, 1, 'default allocation', 'migration', u.created_at
FROM users u JOIN accounts a ON a.user_id = u.id ORDER BY u.id;

--bun:split

-- A job is charged Cost(estimate, gpu_count, rate) credits, drawn from the
-- allocations that draws lists ("allocation:milli-credits", comma
-- separated, in the order drawn).
ALTER TABLE jobs ADD COLUMN account_id INTEGER REFERENCES accounts (id);

--bun:split

ALTER TABLE jobs ADD COLUMN gpu_count INTEGER NOT NULL DEFAULT 1 CHECK (gpu_count >= 1);

--bun:split

ALTER TABLE jobs ADD COLUMN rate INTEGER NOT NULL DEFAULT 1000 CHECK (rate > 0);

--bun:split

ALTER TABLE jobs ADD COLUMN cost INTEGER NOT NULL DEFAULT 0 CHECK (cost >= 0);

--bun:split

ALTER TABLE jobs ADD COLUMN draws TEXT NOT NULL DEFAULT '';

--bun:split

UPDATE jobs SET account_id = (SELECT a.id FROM accounts a WHERE a.user_id = jobs.user_id),
                cost = estimated,
                draws = (SELECT d.id FROM allocations d JOIN accounts a ON a.id = d.account_id
                         WHERE a.user_id = jobs.user_id AND d.is_default = 1) || ':' || estimated;

--bun:split

-- Every entry is the change of one allocation, with its remaining after it
-- and the account's balance after it; entries may also expire, revoke, and
-- transfer credits from a project to its sub-projects. The
-- table is built again, as in 0004, to change its columns and kinds.
CREATE TABLE ledger_new (
    id            INTEGER PRIMARY KEY,
    account_id    INTEGER NOT NULL REFERENCES accounts (id),
    allocation_id INTEGER NOT NULL REFERENCES allocations (id),
    job_id        INTEGER REFERENCES jobs (id),
    actor_id      INTEGER REFERENCES users (id),
    actor_system  TEXT CHECK (actor_system <> ''),
    kind          TEXT    NOT NULL CHECK (kind IN ('grant', 'set', 'charge', 'refund', 'expire', 'revoke', 'transfer')),
    delta         INTEGER NOT NULL, -- milli-credits
    remaining     INTEGER NOT NULL CHECK (remaining >= 0),
    balance       INTEGER NOT NULL CHECK (balance >= 0),
    reason        TEXT    NOT NULL,
    created_at    TIMESTAMP NOT NULL,
    CONSTRAINT ledger_one_actor CHECK ((actor_id IS NULL) <> (actor_system IS NULL))
);

--bun:split

INSERT INTO ledger_new (id, account_id, allocation_id, job_id, actor_id, actor_system, kind, delta, remaining, balance, reason, created_at)
SELECT l.id, a.id, d.id, l.job_id, l.actor_id, l.actor_system, l.kind, l.delta, l.balance, l.balance, l.reason, l.created_at
FROM ledger l JOIN accounts a ON a.user_id = l.user_id JOIN allocations d ON d.account_id = a.id AND d.is_default = 1
ORDER BY l.id;

--bun:split

DROP TABLE ledger;

--bun:split

ALTER TABLE ledger_new RENAME TO ledger;

--bun:split

CREATE INDEX ledger_account_id ON ledger (account_id, id);

--bun:split

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

ALTER TABLE users DROP COLUMN balance;
