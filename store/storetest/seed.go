package storetest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// SeedUser and SeedJob are what fastapi-sample.json says the sample
// database of the FastAPI service holds; Password is in clear.
type SeedUser struct {
	ID       int64    `json:"id"`
	Username string   `json:"username"`
	Password string   `json:"password"`
	Role     string   `json:"role"`
	Quota    *float64 `json:"gpu_hours_quota"`
}

type SeedJob struct {
	ID     int64  `json:"id"`
	UserID int64  `json:"user_id"`
	Status string `json:"status"`
}

// seedDir is shared/seed beside the repository: the folder above the
// module's root.
func seedDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("storetest: no go.mod above the test's folder")
		}
		dir = parent
	}
	seed := filepath.Join(dir, "..", "shared", "seed")
	if _, err := os.Stat(seed); err != nil {
		t.Skip("../shared/seed is not beside the repository")
	}
	return seed
}

// FastAPISample copies the database written by the FastAPI service into
// the test's temp dir and returns the copy's path: shared/ is read, never
// written.
func FastAPISample(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(seedDir(t), "fastapi-sample.db"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "old.db")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// FastAPISampleContents returns what fastapi-sample.json lists.
func FastAPISampleContents(t testing.TB) ([]SeedUser, []SeedJob) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(seedDir(t), "fastapi-sample.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Users []SeedUser `json:"users"`
		Jobs  []SeedJob  `json:"jobs"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v.Users, v.Jobs
}
