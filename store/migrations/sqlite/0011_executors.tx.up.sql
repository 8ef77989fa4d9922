-- Executors: the credentials of executors that run jobs on other machines
-- and call the executor API (a gaas-runner on each GPU host). Only the
-- SHA-256 of a token is kept: tokens are 256 random bits, which no one
-- guesses, so a fast hash is enough. A revoked token never verifies
-- again; its row stays, so that its name is not given to another.
CREATE TABLE executors (
    id           INTEGER PRIMARY KEY,
    name         TEXT      NOT NULL,
    token_hash   TEXT      NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    revoked_at   TIMESTAMP,
    last_seen_at TIMESTAMP
);

--bun:split

-- Names are unique without regard to case; they are ASCII, which lower() folds.
CREATE UNIQUE INDEX executors_name_key ON executors (lower(name));

--bun:split

CREATE UNIQUE INDEX executors_token_hash_key ON executors (token_hash);
