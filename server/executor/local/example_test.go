package local_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/server/executor/local"
)

func Example() {
	dir, err := os.MkdirTemp("", "gaas-local-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o711) // the jobs' user works in the log directory below

	ctx := context.Background()
	e, err := local.New(ctx, local.Config{
		LogDir: filepath.Join(dir, "logs"),
		GPUs:   []local.GPU{{Index: 0, UUID: "GPU-5f1b", Name: "NVIDIA A100-SXM4-80GB"}},
		Types:  map[string]string{"NVIDIA A100-SXM4-80GB": "A100"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer e.Close(ctx)
	free, _ := e.Free(ctx)
	fmt.Println("free:", free)

	j := gaas.Job{ID: 42, Command: "echo on $CUDA_VISIBLE_DEVICES", GPUType: "A100", GPUCount: 1, EstimatedHours: gaas.Hour}
	if _, err := e.Start(ctx, j); err != nil {
		fmt.Println(err)
		return
	}
	for {
		runs, _ := e.Runs(ctx)
		if o := runs[0].Ended; o != nil {
			fmt.Println(o.Status, o.Reason)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	log, truncated, _ := e.Log(j.ID, 1<<10)
	fmt.Printf("%s(truncated: %v)\n", log, truncated)
	// Output:
	// free: map[A100:1]
	// COMPLETED exit status 0
	// on GPU-5f1b
	// (truncated: false)
}
