package rollback

import (
	"slices"
	"testing"
)

func TestRunsInReverse(t *testing.T) {
	var got []int
	var s Stack
	for i := range 3 {
		s.Push(func() { got = append(got, i) })
	}
	s.Run()
	if !slices.Equal(got, []int{2, 1, 0}) {
		t.Fatalf("order %v", got)
	}
	var empty Stack
	empty.Run()
}
