package gaas

import (
	"context"
	"strings"
	"time"
)

// GPUType is an entry of the GPU catalogue: what a GPU-hour of that type
// costs, and how many of its GPUs one job may ask for.
//
// While the catalogue is empty, gaas runs in open mode: any GPU type a
// job names is accepted at rate 1, as before GPU types had rates. Once it
// holds one type, a job must name an enabled type of it.
type GPUType struct {
	// Name is what jobs ask for; it is matched without regard to letter
	// case, and a job records it as spelled here.
	Name        string
	Description string
	Rate        Rate
	// MaxGPUsPerJob is the most GPUs of this type one job may use; 0 is
	// no limit of its own (MaxGPUsPerJob of the package still holds).
	MaxGPUsPerJob int
	// Enabled is false for a retired type: it refuses new jobs and keeps
	// its history.
	Enabled bool
	// AutoApprove makes its jobs APPROVED when they are submitted, for an
	// executor to run without waiting for an admin.
	AutoApprove bool
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// SameGPUType reports whether a and b name the same GPU type: equal but
// for the letter case of ASCII letters. Only ASCII folds, as SQL's lower()
// does on every database the store runs on; a Unicode fold would let
// "\u212A80" (with the Kelvin sign) stand for K80 in one place and not in
// another.
func SameGPUType(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// IsASCII reports whether s is ASCII, as every name of the catalogue is.
func IsASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// GPUsAllowed is the most GPUs of type t a job may use.
func (t GPUType) GPUsAllowed() int {
	if t.MaxGPUsPerJob > 0 {
		return t.MaxGPUsPerJob
	}
	return MaxGPUsPerJob
}

// DescriptionMaxLen is the longest description of a GPU type, in characters.
const DescriptionMaxLen = 1024

// GPUTypeNameMaxLen is the longest name of a GPU type in the catalogue.
const GPUTypeNameMaxLen = 64

// MaxGPUTypes bounds the catalogue, retired types included, which is
// listed whole.
const MaxGPUTypes = 1000

var descriptionText = textRule{maxLen: DescriptionMaxLen, lines: true}

// ValidateGPUTypeName reports whether name may name a type of the
// catalogue: 1 to 64 printable ASCII characters, no '/', no space at
// either end, and neither "." nor "..". ASCII keeps case-insensitive matching the same in every
// database, and the name travels in a URL path.
func ValidateGPUTypeName(name string) error {
	if len(name) < 1 || len(name) > GPUTypeNameMaxLen {
		return Invalid("name", "must be 1 to %d characters", GPUTypeNameMaxLen)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 0x20 || c > 0x7e || c == '/' {
			return Invalid("name", "may hold only printable ASCII characters other than '/'")
		}
	}
	if strings.TrimSpace(name) != name {
		return Invalid("name", "must not begin or end with a space")
	}
	if name == "." || name == ".." {
		return Invalid("name", "must not be %q, which names no GPU type in a path", name)
	}
	return nil
}

// validateGPUsPerJob checks a type's limit of GPUs per job: 0 (none) or 1
// to MaxGPUsPerJob.
func validateGPUsPerJob(v *ValidationError, n int) {
	if n < 0 || n > MaxGPUsPerJob {
		v.Add("max_gpus_per_job", "must be between 1 and %d, or 0 for no limit", MaxGPUsPerJob)
	}
}

// CreateGPUTypeRequest adds a type to the catalogue. A new type is enabled
// unless Retired.
type CreateGPUTypeRequest struct {
	Name          string
	Description   string
	Rate          Rate
	MaxGPUsPerJob int
	Retired       bool
	AutoApprove   bool
}

// Validate lists every field of r that breaks a rule.
func (r CreateGPUTypeRequest) Validate() error {
	v := &ValidationError{}
	if err := ValidateGPUTypeName(r.Name); err != nil {
		v.Fields = append(v.Fields, err.(*ValidationError).Fields...)
	}
	descriptionText.add(v, "description", r.Description)
	if err := ValidateRate(r.Rate); err != nil {
		v.Fields = append(v.Fields, err.(*ValidationError).Fields...)
	}
	validateGPUsPerJob(v, r.MaxGPUsPerJob)
	return v.Err()
}

// UpdateGPUTypeRequest changes the fields of type Name that are not nil. A
// new rate applies to jobs submitted after it; every job keeps the rate it
// was charged at.
type UpdateGPUTypeRequest struct {
	Name          string
	Description   *string
	Rate          *Rate
	MaxGPUsPerJob *int
	Enabled       *bool
	AutoApprove   *bool
}

// Validate lists every field of r that breaks a rule.
func (r UpdateGPUTypeRequest) Validate() error {
	v := &ValidationError{}
	if r.Description != nil {
		descriptionText.add(v, "description", *r.Description)
	}
	if r.Rate != nil {
		if err := ValidateRate(*r.Rate); err != nil {
			v.Fields = append(v.Fields, err.(*ValidationError).Fields...)
		}
	}
	if r.MaxGPUsPerJob != nil {
		validateGPUsPerJob(v, *r.MaxGPUsPerJob)
	}
	return v.Err()
}

// GPUTypesRequest asks Catalogue.GPUTypes for the catalogue; retired types
// are listed only when Retired is true.
type GPUTypesRequest struct {
	Retired bool
}

// Catalogue is the GPU catalogue. Every signed-in user may read it; only
// admins (and the system) change it.
type Catalogue interface {
	// GPUTypes lists the catalogue by name.
	GPUTypes(ctx context.Context, caller int64, req GPUTypesRequest) ([]GPUType, error)

	// CreateGPUType adds a type. A name taken in any letter case, or a
	// catalogue that holds MaxGPUTypes already, is ErrConflict.
	CreateGPUType(ctx context.Context, caller int64, req CreateGPUTypeRequest) (GPUType, error)

	// UpdateGPUType changes a type, named in any letter case.
	UpdateGPUType(ctx context.Context, caller int64, req UpdateGPUTypeRequest) (GPUType, error)
}
