-- Notifications. An event is written in the transaction of the change it
-- reports (the outbox), and fanned out after commit to a delivery for each
-- endpoint that receives it; deliveries are tried until an endpoint
-- answers 2xx. allocation_notices remember which notices (a threshold
-- crossed, an expiry near) an allocation has had, so each is sent once.
CREATE TABLE events (
    id            INTEGER PRIMARY KEY,
    type          TEXT    NOT NULL,
    account_id    INTEGER,              -- routing: whose it is (no foreign keys: a log)
    project_id    INTEGER,
    user_id       INTEGER,
    webhook_id    INTEGER,
    payload       TEXT    NOT NULL,     -- the data, JSON
    created_at    TIMESTAMP NOT NULL,
    dispatched_at TIMESTAMP             -- NULL until fanned out to deliveries
);

--bun:split

CREATE INDEX events_undispatched ON events (id) WHERE dispatched_at IS NULL;

--bun:split

CREATE TABLE webhooks (
    id              INTEGER PRIMARY KEY,
    url             TEXT    NOT NULL,
    events          TEXT    NOT NULL,   -- event types, one a line
    secret          TEXT    NOT NULL,   -- whsec_ form
    owner_id        INTEGER NOT NULL REFERENCES users (id),
    project_id      INTEGER REFERENCES projects (id),  -- NULL: every event (an admin's)
    disabled_at     TIMESTAMP,
    disabled_reason TEXT    NOT NULL,
    failing_since   TIMESTAMP,          -- the first failure since the last success
    created_at      TIMESTAMP NOT NULL,
    updated_at      TIMESTAMP NOT NULL,
    CONSTRAINT webhooks_disabled_reason CHECK ((disabled_at IS NULL) = (disabled_reason = ''))
);

--bun:split

CREATE TABLE deliveries (
    id               INTEGER PRIMARY KEY,
    event_id         INTEGER NOT NULL REFERENCES events (id),
    webhook_id       INTEGER NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    status           TEXT    NOT NULL CHECK (status IN ('pending', 'delivered')),
    attempts         INTEGER NOT NULL CHECK (attempts >= 0),
    next_attempt_at  TIMESTAMP,         -- NULL once delivered
    last_attempt_at  TIMESTAMP,
    last_error       TEXT    NOT NULL,
    last_status_code INTEGER NOT NULL,  -- 0: no answer
    delivered_at     TIMESTAMP,
    created_at       TIMESTAMP NOT NULL,
    CONSTRAINT deliveries_once UNIQUE (webhook_id, event_id),
    CONSTRAINT deliveries_delivered CHECK ((status = 'delivered') = (delivered_at IS NOT NULL))
);

--bun:split

CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';

--bun:split

CREATE INDEX deliveries_webhook ON deliveries (webhook_id, id);

--bun:split

CREATE TABLE allocation_notices (
    allocation_id INTEGER NOT NULL REFERENCES allocations (id),
    notice        TEXT    NOT NULL,     -- "threshold:80", "expiring"
    PRIMARY KEY (allocation_id, notice)
);
