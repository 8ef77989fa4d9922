package storetest

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// The copy of the sample in the repository is the project's shared seed,
// byte for byte, when the seed is beside the repository (../shared/seed).
func TestSampleMatchesSharedSeed(t *testing.T) {
	seed := filepath.Join("..", "..", "..", "shared", "seed")
	if _, err := os.Stat(seed); err != nil {
		t.Skip("../shared/seed is not beside the repository; nothing to compare the copy with")
	}
	for name, copy := range map[string][]byte{"fastapi-sample.db": sampleDB, "fastapi-sample.json": sampleJSON} {
		shared, err := os.ReadFile(filepath.Join(seed, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(shared, copy) {
			t.Errorf("storetest/fastapi/%s differs from ../shared/seed/%s: copy it again", name, name)
		}
	}
}
