package local

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/gaas-io/gaas/gaas"
)

// GPU is one GPU of this machine, as nvidia-smi lists it.
type GPU struct {
	// Index is nvidia-smi's index of the GPU.
	Index int
	// UUID is what CUDA_VISIBLE_DEVICES names the GPU by ("GPU-5f1b...").
	UUID string
	// Name is the model as nvidia-smi reports it ("NVIDIA A100-SXM4-80GB").
	Name string
	// MemoryMiB is its memory; 0 if unknown.
	MemoryMiB int
}

// smiArgs ask nvidia-smi for what a GPU holds, one GPU a line, without
// header or units.
var smiArgs = []string{"--query-gpu=index,uuid,name,memory.total", "--format=csv,noheader,nounits"}

// QueryGPUs lists the GPUs of this machine with nvidia-smi (path, or
// "nvidia-smi" on PATH when empty).
func QueryGPUs(ctx context.Context, path string) ([]GPU, error) {
	if path == "" {
		path = "nvidia-smi"
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, smiArgs...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg, _, _ := strings.Cut(strings.TrimSpace(stderr.String()+stdout.String()), "\n")
		if msg == "" {
			msg = err.Error()
		}
		return nil, fmt.Errorf("local: nvidia-smi: %s", msg)
	}
	return ParseGPUs(stdout.String())
}

// ParseGPUs reads the answer of nvidia-smi --query-gpu=index,uuid,name,
// memory.total --format=csv,noheader,nounits: "0, GPU-5f1b..., NVIDIA
// A100-SXM4-80GB, 81920" a line. nvidia-smi does not quote a name, so
// whatever lies between the UUID and the memory is the name, commas and
// all; a memory it cannot tell ("[N/A]") is 0.
func ParseGPUs(out string) ([]GPU, error) {
	var gpus []GPU
	for n, line := 0, ""; out != ""; {
		line, out, _ = strings.Cut(out, "\n")
		n++
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		f := strings.Split(line, ",")
		if len(f) < 4 {
			return nil, fmt.Errorf("local: nvidia-smi line %d: %q: want index, uuid, name, memory", n, line)
		}
		for i := range f {
			f[i] = strings.TrimSpace(f[i])
		}
		index, err := strconv.Atoi(f[0])
		if err != nil || index < 0 {
			return nil, fmt.Errorf("local: nvidia-smi line %d: %q: index is not a number", n, line)
		}
		g := GPU{Index: index, UUID: f[1], Name: strings.Join(f[2:len(f)-1], ", ")}
		if g.UUID == "" || g.Name == "" {
			return nil, fmt.Errorf("local: nvidia-smi line %d: %q: no uuid or name", n, line)
		}
		g.MemoryMiB, _ = strconv.Atoi(f[len(f)-1])
		gpus = append(gpus, g)
	}
	return gpus, nil
}

// pool is the GPUs of one type.
type pool struct {
	typ  string
	gpus []GPU
	busy []bool
}

// pools groups gpus by catalogue type: types maps nvidia-smi names to
// types, and a name it does not map is its own type (open mode). Names
// and types match without regard to ASCII case, as the catalogue does; a
// type is spelled as the first GPU of it has it.
func pools(gpus []GPU, types map[string]string) ([]*pool, error) {
	var ps []*pool
	seen := make(map[string]bool)
	for _, g := range gpus {
		if seen[g.UUID] {
			return nil, fmt.Errorf("local: GPU %s is listed twice", g.UUID)
		}
		seen[g.UUID] = true
		typ, ok := types[g.Name]
		for name, t := range types {
			if !ok && gaas.SameGPUType(name, g.Name) {
				typ, ok = t, true
			}
		}
		if !ok {
			typ = g.Name
		}
		p := findPool(ps, typ)
		if p == nil {
			p = &pool{typ: typ}
			ps = append(ps, p)
		}
		p.gpus = append(p.gpus, g)
		p.busy = append(p.busy, false)
	}
	return ps, nil
}

func findPool(ps []*pool, typ string) *pool {
	for _, p := range ps {
		if gaas.SameGPUType(p.typ, typ) {
			return p
		}
	}
	return nil
}

func (p *pool) free() int {
	n := 0
	for _, b := range p.busy {
		if !b {
			n++
		}
	}
	return n
}

// take marks n free GPUs busy, the lowest first, and returns their UUIDs.
func (p *pool) take(n int) []string {
	var ids []string
	for i := range p.gpus {
		if len(ids) < n && !p.busy[i] {
			p.busy[i] = true
			ids = append(ids, p.gpus[i].UUID)
		}
	}
	return ids
}

// give frees the GPUs of uuids.
func (p *pool) give(uuids []string) {
	for _, id := range uuids {
		for i := range p.gpus {
			if p.gpus[i].UUID == id {
				p.busy[i] = false
			}
		}
	}
}
