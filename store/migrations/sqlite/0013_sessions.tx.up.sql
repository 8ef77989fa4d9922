-- Sessions: browsers signed in to the portal. Only the SHA-256 of a
-- session's token is kept: tokens are 256 random bits, which no one
-- guesses, so a fast hash is enough. A session is good only while its
-- user's token_generation is the one it began at (token_generation), so
-- that whatever revokes the user's tokens ends their sessions too.
CREATE TABLE sessions (
    id               INTEGER PRIMARY KEY,
    user_id          INTEGER   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash       TEXT      NOT NULL,
    token_generation INTEGER   NOT NULL,
    csrf_secret      TEXT      NOT NULL,
    created_at       TIMESTAMP NOT NULL,
    expires_at       TIMESTAMP NOT NULL,
    last_seen_at     TIMESTAMP NOT NULL
);

--bun:split

CREATE UNIQUE INDEX sessions_token_hash_key ON sessions (token_hash);

--bun:split

CREATE INDEX sessions_user_id ON sessions (user_id);

--bun:split

CREATE INDEX sessions_expires_at ON sessions (expires_at);
