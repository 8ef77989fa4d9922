package storetest

import (
	_ "embed"
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

// The sample, kept in the repository (fastapi/README.md says what it is).
var (
	//go:embed fastapi/fastapi-sample.db
	sampleDB []byte
	//go:embed fastapi/fastapi-sample.json
	sampleJSON []byte
)

// FastAPISample writes the database written by the FastAPI service into
// the test's temp dir and returns its path.
func FastAPISample(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "old.db")
	if err := os.WriteFile(path, sampleDB, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// FastAPISampleContents returns what fastapi-sample.json lists.
func FastAPISampleContents(t testing.TB) ([]SeedUser, []SeedJob) {
	t.Helper()
	var v struct {
		Users []SeedUser `json:"users"`
		Jobs  []SeedJob  `json:"jobs"`
	}
	if err := json.Unmarshal(sampleJSON, &v); err != nil {
		t.Fatal(err)
	}
	return v.Users, v.Jobs
}
