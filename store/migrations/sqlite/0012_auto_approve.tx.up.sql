-- A GPU type or a project may approve the jobs submitted to it at once,
-- for an executor to run without waiting for an admin.
ALTER TABLE gpu_types ADD COLUMN auto_approve INTEGER NOT NULL DEFAULT 0 CHECK (auto_approve IN (0, 1));

--bun:split

ALTER TABLE projects ADD COLUMN auto_approve INTEGER NOT NULL DEFAULT 0 CHECK (auto_approve IN (0, 1));
