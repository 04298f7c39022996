package oom

import (
	"os"
	"strconv"
	"testing"
)

func TestSetSelf(t *testing.T) {
	// Raising is always allowed, so the test works with or without CAP_SYS_RESOURCE.
	before, err := Read()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _, _ = SetSelf(before) })
	eff, restricted, err := SetSelf(before + 1)
	if err != nil || restricted || eff != before+1 {
		t.Fatalf("SetSelf(%d) = %d, %v, %v", before+1, eff, restricted, err)
	}
	b, _ := os.ReadFile(procPath)
	if string(b) != strconv.Itoa(before+1)+"\n" {
		t.Fatalf("kernel reports %q", b)
	}
	if _, _, err := SetSelf(2000); err == nil {
		t.Fatal("out of range must fail")
	}
}

func TestSetSelfRestricted(t *testing.T) {
	// Lowering below the inherited minimum fails without CAP_SYS_RESOURCE;
	// with it, the write succeeds. Either way SetSelf must not fail.
	eff, restricted, err := SetSelf(-999)
	if err != nil {
		t.Fatal(err)
	}
	cur, _ := Read()
	if eff != cur {
		t.Fatalf("effective %d, kernel says %d", eff, cur)
	}
	if !restricted && cur != -999 {
		t.Fatalf("not restricted but value is %d", cur)
	}
	t.Logf("restricted=%v effective=%d", restricted, eff)
}

func TestClamp(t *testing.T) {
	r := Restriction{Restricted: true, Floor: 0}
	if v, ok := r.Clamp(-998); v != 0 || ok {
		t.Fatalf("Clamp(-998) = %d, %v", v, ok)
	}
	if v, ok := r.Clamp(500); v != 500 || !ok {
		t.Fatalf("Clamp(500) = %d, %v", v, ok)
	}
	if v, ok := (Restriction{}).Clamp(-998); v != -998 || !ok {
		t.Fatalf("unrestricted Clamp = %d, %v", v, ok)
	}
}
