// Package rollback undoes the steps of an operation that failed half-way,
// last step first, so that a failed RunPodSandbox or CreateContainer leaves
// nothing behind.
package rollback

// Stack holds the undo of each step done so far.
type Stack []func()

// Push records how to undo the step just done.
func (s *Stack) Push(undo func()) { *s = append(*s, undo) }

// Run undoes every step, the last one first.
func (s Stack) Run() {
	for i := len(s) - 1; i >= 0; i-- {
		s[i]()
	}
}
