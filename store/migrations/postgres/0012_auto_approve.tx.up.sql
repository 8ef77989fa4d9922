-- A GPU type or a project may approve the jobs submitted to it at once,
-- for an executor to run without waiting for an admin.
ALTER TABLE gpu_types ADD COLUMN auto_approve BOOLEAN NOT NULL DEFAULT false;

--bun:split

ALTER TABLE projects ADD COLUMN auto_approve BOOLEAN NOT NULL DEFAULT false;
