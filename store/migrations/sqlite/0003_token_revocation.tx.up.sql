-- token_generation counts the revocations of a user's tokens: a token names
-- the generation it was issued at and stops working once the count moves
-- (a password change, a role change, disabling, "log out everywhere").
-- A disabled account cannot log in, and its tokens do not work.
ALTER TABLE users ADD COLUMN token_generation INTEGER NOT NULL DEFAULT 0;

--bun:split

ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1));
