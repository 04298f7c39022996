package benchkit

import (
	"archive/tar"
	"fmt"
	"math"
	"math/rand/v2"
	"path"
	"strings"
)

// bigShare is the share of a layer's bytes in its few large files; the rest
// is spread over many small ones, as in a typical distro or language layer.
const bigShare = 0.55

// entry is one planned tar entry.
type entry struct {
	name string
	kind byte // tar.TypeDir, tar.TypeReg or tar.TypeSymlink
	size int64
	mode int64
	link string
}

// planner lays out the entries of one layer.
type planner struct {
	rng     *rand.Rand
	vocab   []string
	entries []entry
	parents []string // directories new directories may go in
	counter int      // keeps generated names unique
}

func (p *planner) dir(name string) {
	p.entries = append(p.entries, entry{name: name + "/", kind: tar.TypeDir, mode: 0o755})
}

func (p *planner) name() string {
	p.counter++
	return fmt.Sprintf("%s%d", p.vocab[p.rng.IntN(len(p.vocab))], p.counter)
}

// newDir adds a directory below a random earlier one, at most 6 levels deep.
func (p *planner) newDir() string {
	parent := p.parents[p.rng.IntN(len(p.parents))]
	d := path.Join(parent, p.name())
	p.dir(d)
	if strings.Count(d, "/") < 5 {
		p.parents = append(p.parents, d)
	}
	return d
}

var extensions = []string{"", ".so", ".py", ".txt", ".h", ".json", ".go", ".mo", ".gz", ".html"}

func (p *planner) file(dir string, size int64, exec bool) {
	mode := int64(0o644)
	if exec || p.rng.IntN(10) == 0 {
		mode = 0o755
	}
	name := path.Join(dir, p.name()+extensions[p.rng.IntN(len(extensions))])
	p.entries = append(p.entries, entry{name: name, kind: tar.TypeReg, size: size, mode: mode})
}

func (p *planner) symlink(dir, target string) {
	name := path.Join(dir, p.name())
	p.entries = append(p.entries, entry{name: name, kind: tar.TypeSymlink, mode: 0o777, link: path.Base(target)})
}

// planLayer lays out a layer of about target content bytes under its own
// directories (as an image's layers add packages): bigShare of it in 2 to 4
// large files, the rest in small files of 64 B to 256 KiB (log-uniform, so
// most are a few KiB) in directories of 3 to 42 files, a symlink now and
// then. The large files are spread over the run of small ones.
func planLayer(rng *rand.Rand, vocab []string, idx int, target int64) []entry {
	p := &planner{rng: rng, vocab: vocab}
	for _, d := range []string{"usr", "usr/lib", "usr/share", "opt"} {
		p.dir(d)
	}
	for _, r := range []string{"usr/lib/bench%d", "usr/share/bench%d", "opt/bench%d"} {
		d := fmt.Sprintf(r, idx)
		p.dir(d)
		p.parents = append(p.parents, d)
	}
	bigs := splitSize(rng, int64(float64(target)*bigShare), 2+rng.IntN(3))
	smallBudget := target - sum(bigs)
	var small int64
	placed, left, cur, lastFile := 0, 0, p.parents[0], ""
	for small < smallBudget || placed < len(bigs) {
		if left == 0 {
			cur, left = p.newDir(), 3+rng.IntN(40)
		}
		// Place big file i once the small files pass (i+1)/(n+1) of theirs.
		if placed < len(bigs) && (small >= smallBudget || float64(small) >= float64(smallBudget)*float64(placed+1)/float64(len(bigs)+1)) {
			p.file(cur, bigs[placed], true)
			placed++
			continue
		}
		size := min(logUniform(rng, 64, 256<<10), smallBudget-small)
		p.file(cur, size, false)
		small += size
		left--
		if lastFile != "" && rng.IntN(30) == 0 {
			p.symlink(cur, lastFile)
		}
		lastFile = p.entries[len(p.entries)-1].name
	}
	return p.entries
}

// splitSize splits total into n random parts of at least a quarter of the
// mean each.
func splitSize(rng *rand.Rand, total int64, n int) []int64 {
	w := make([]float64, n)
	var sw float64
	for i := range w {
		w[i] = 0.25 + rng.Float64()
		sw += w[i]
	}
	parts := make([]int64, n)
	var done int64
	for i := range parts {
		parts[i] = int64(float64(total) * w[i] / sw)
		done += parts[i]
	}
	parts[n-1] += total - done
	return parts
}

func logUniform(rng *rand.Rand, lo, hi float64) int64 {
	return int64(math.Exp(math.Log(lo) + rng.Float64()*(math.Log(hi)-math.Log(lo))))
}

func sum(xs []int64) int64 {
	var s int64
	for _, x := range xs {
		s += x
	}
	return s
}
