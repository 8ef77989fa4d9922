-- Projects: an account shared by members, in a tree whose caps bound what
-- each project and its descendants spend. spent counts what jobs were
-- charged less what came back, for a project with its descendants and for
-- each member; Check holds both to the ledger.
CREATE TABLE projects (
    id               INTEGER PRIMARY KEY,
    name             TEXT    NOT NULL,
    description      TEXT    NOT NULL,
    parent_id        INTEGER REFERENCES projects (id),
    depth            INTEGER NOT NULL CHECK (depth >= 1),              -- 1 at the top
    account_id       INTEGER NOT NULL UNIQUE REFERENCES accounts (id),
    cap              INTEGER CHECK (cap >= 0),                         -- milli-credits; NULL: none
    spent            INTEGER NOT NULL CHECK (spent >= 0),
    managers_approve INTEGER NOT NULL CHECK (managers_approve IN (0, 1)),
    created_at       TIMESTAMP NOT NULL,
    updated_at       TIMESTAMP NOT NULL
);

--bun:split

-- Names are ASCII and unique without regard to case, which lower() folds.
CREATE UNIQUE INDEX projects_name_key ON projects (lower(name));

--bun:split

-- A member taken out keeps their row, inactive, so that what they spent
-- still counts when their jobs settle or they come back.
CREATE TABLE project_members (
    project_id  INTEGER NOT NULL REFERENCES projects (id),
    user_id     INTEGER NOT NULL REFERENCES users (id),
    role        TEXT    NOT NULL CHECK (role IN ('manager', 'member')),
    spend_limit INTEGER CHECK (spend_limit >= 0),  -- milli-credits; NULL: none
    gpu_types   TEXT,                              -- one name a line; NULL: every type
    spent       INTEGER NOT NULL CHECK (spent >= 0),
    active      INTEGER NOT NULL CHECK (active IN (0, 1)),
    created_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (project_id, user_id)
);

--bun:split

CREATE INDEX project_members_user_id ON project_members (user_id);

--bun:split

-- The project a job is charged to, if any; its jobs are listed by it, and
-- the index holds no job of a user's own account.
ALTER TABLE jobs ADD COLUMN project_id INTEGER REFERENCES projects (id);

--bun:split

CREATE INDEX jobs_project_id ON jobs (project_id, id) WHERE project_id IS NOT NULL;

--bun:split

-- The project a user's jobs go to when they name none; NULL: their own account.
ALTER TABLE users ADD COLUMN default_project_id INTEGER REFERENCES projects (id);

--bun:split

-- For a project's charges and refunds, the member whose job it is.
ALTER TABLE ledger ADD COLUMN member_id INTEGER REFERENCES users (id);
