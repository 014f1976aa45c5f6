package hugepages

import (
	"slices"
	"testing"
)

func TestPlan(t *testing.T) {
	const madvise = "always [madvise] never\n"
	for _, c := range []struct {
		name  string
		env   map[string]string
		mode  string
		value string // "" if the process must not start again
		exe   string
		trace bool
	}{
		{"madvise", nil, madvise, "glibc.malloc.hugetlb=1", "", false},
		{"madvise, other tunables kept", map[string]string{tunables: "glibc.malloc.arena_max=2"}, madvise, "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1", "", false},
		{"always", nil, "[always] madvise never\n", "", "", false},
		{"never", nil, "always madvise [never]\n", "", "", false},
		{"no such file", nil, "", "", "", false},
		{"turned off", map[string]string{Env: "off"}, madvise, "", "", false},
		{"turned off, capitals", map[string]string{Env: "OFF"}, madvise, "", "", false},
		{"any other value is the default", map[string]string{Env: "on"}, madvise, "glibc.malloc.hugetlb=1", "", false},
		{"already started", map[string]string{started: "1"}, madvise, "", "", false},
		{"the caller chose", map[string]string{tunables: "glibc.malloc.hugetlb=0"}, madvise, "", "", false},
		{"through the dynamic loader", nil, madvise, "", "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", false},
		{"the courier binary", nil, madvise, "glibc.malloc.hugetlb=1", "/usr/local/bin/courier", false},
		{"under a debugger", nil, madvise, "", "/usr/local/bin/courier", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			value, why, ok := plan(func(k string) string { return c.env[k] }, host{thpMode: c.mode, exe: c.exe, traced: c.trace})
			if ok != (c.value != "") || value != c.value {
				t.Fatalf("plan = %q, %v, want %q, %v", value, ok, c.value, c.value != "")
			}
			if !ok && why == "" {
				t.Error("no reason given for not starting again")
			}
		})
	}
}

func TestWithEnv(t *testing.T) {
	in := []string{"A=1", "GLIBC_TUNABLES=x=1", "GLIBC_TUNABLES_OTHER=2", "B="}
	got := withEnv(in, "GLIBC_TUNABLES", "x=1:y=2")
	want := []string{"A=1", "GLIBC_TUNABLES_OTHER=2", "B=", "GLIBC_TUNABLES=x=1:y=2"}
	if !slices.Equal(got, want) {
		t.Errorf("replace: %q, want %q", got, want)
	}
	if got := withEnv([]string{"A=1"}, "K", "v"); !slices.Equal(got, []string{"A=1", "K=v"}) {
		t.Errorf("add: %q", got)
	}
	if !slices.Equal(in, []string{"A=1", "GLIBC_TUNABLES=x=1", "GLIBC_TUNABLES_OTHER=2", "B="}) {
		t.Errorf("input changed: %q", in)
	}
}
