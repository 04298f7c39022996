package integration

import (
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-rt/cri-rt/pkg/imagebuild"
	"github.com/cri-rt/cri-rt/test/framework"
	"github.com/cri-rt/cri-rt/test/registry"
)

func testImage(t *testing.T) imagebuild.Config {
	return imagebuild.Config{Entrypoint: []string{"/bin/app"}, User: "1000"}
}

// pushFixtures pushes two images to a plain registry on storage and
// returns the storage dir; the registry is stopped again.
func pushFixtures(t *testing.T) string {
	plain := registry.StartDistribution(t, registry.DistributionOptions{})
	img := registry.BuildImage(t, testImage(t),
		[]imagebuild.Entry{imagebuild.File("bin/app", 0o755, []byte("app")), imagebuild.File("etc/passwd", 0o644, []byte("root:x:0:0::/:/bin/sh\n"))},
		[]imagebuild.Entry{imagebuild.File("data/x", 0o644, []byte("x"))})
	registry.Push(t, plain.Host, "team/app:1", img)
	named := registry.BuildImage(t, imagebuild.Config{User: "nobody:nogroup"}, []imagebuild.Entry{imagebuild.File("n", 0o644, []byte("n"))})
	registry.Push(t, plain.Host, "team/named:1", named)
	plain.Stop()
	return plain.Storage
}

// hostsDir writes certs.d/registry.test/hosts.toml with body.
func hostsDir(t *testing.T, body string) string {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "registry.test"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "registry.test", "hosts.toml"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func pull(t *testing.T, is runtimeapi.ImageServiceClient, ref string, auth *runtimeapi.AuthConfig) (string, error) {
	resp, err := is.PullImage(ctx(t), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}, Auth: auth})
	return resp.GetImageRef(), err
}

func TestImageRPCsAgainstDistribution(t *testing.T) {
	storage := pushFixtures(t)
	reg := registry.StartDistribution(t, registry.DistributionOptions{Storage: storage})
	certs := hostsDir(t, fmt.Sprintf("server = \"http://%s\"\n", reg.Host))
	d := framework.NewDaemon(t, fmt.Sprintf("[registry]\nconfig_path = %q\n", certs))
	d.Start()
	_, is := d.Clients()

	id, err := pull(t, is, "registry.test/team/app:1", nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := is.ImageStatus(ctx(t), &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: "registry.test/team/app:1"}, Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	img := st.GetImage()
	if img.GetId() != id || len(img.RepoTags) != 1 || img.RepoTags[0] != "registry.test/team/app:1" ||
		len(img.RepoDigests) != 1 || !strings.HasPrefix(img.RepoDigests[0], "registry.test/team/app@sha256:") ||
		img.GetUid().GetValue() != 1000 || img.Size == 0 || img.Pinned {
		t.Fatalf("ImageStatus = %+v", img)
	}
	if !strings.Contains(st.Info["info"], `"imageSpec"`) {
		t.Fatalf("verbose info: %v", st.Info)
	}
	// By ID, ID prefix and repo digest.
	for _, q := range []string{id, strings.TrimPrefix(id, "sha256:")[:12], img.RepoDigests[0]} {
		st, err := is.ImageStatus(ctx(t), &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: q}})
		if err != nil || st.GetImage().GetId() != id {
			t.Errorf("ImageStatus(%q) = %v, %v", q, st.GetImage(), err)
		}
	}
	// By digest, through the same mirror.
	byDigest, err := pull(t, is, img.RepoDigests[0], nil)
	if err != nil || byDigest != id {
		t.Fatalf("pull by digest %s: %s, %v", img.RepoDigests[0], byDigest, err)
	}
	if _, err := pull(t, is, "registry.test/team/named:1", nil); err != nil {
		t.Fatal(err)
	}
	st, _ = is.ImageStatus(ctx(t), &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: "registry.test/team/named:1"}})
	if st.GetImage().GetUsername() != "nobody" || st.GetImage().GetUid() != nil {
		t.Fatalf("named user: %+v", st.GetImage())
	}

	list, err := is.ListImages(ctx(t), &runtimeapi.ListImagesRequest{})
	if err != nil || len(list.Images) != 2 {
		t.Fatalf("ListImages = %v, %v", list, err)
	}
	list, err = is.ListImages(ctx(t), &runtimeapi.ListImagesRequest{Filter: &runtimeapi.ImageFilter{Image: &runtimeapi.ImageSpec{Image: "registry.test/team/named:1"}}})
	if err != nil || len(list.Images) != 1 || list.Images[0].RepoTags[0] != "registry.test/team/named:1" {
		t.Fatalf("filtered ListImages = %v, %v", list, err)
	}
	fsinfo, err := is.ImageFsInfo(ctx(t), &runtimeapi.ImageFsInfoRequest{})
	if err != nil || len(fsinfo.ImageFilesystems) != 1 || fsinfo.ImageFilesystems[0].UsedBytes.GetValue() == 0 ||
		fsinfo.ImageFilesystems[0].InodesUsed.GetValue() == 0 || !strings.HasPrefix(fsinfo.ImageFilesystems[0].FsId.GetMountpoint(), d.Root) {
		t.Fatalf("ImageFsInfo = %v, %v", fsinfo, err)
	}

	// Images survive a restart, including a SIGKILL.
	d.Kill()
	d.Start()
	_, is = d.Clients()
	list, err = is.ListImages(ctx(t), &runtimeapi.ListImagesRequest{})
	if err != nil || len(list.Images) != 2 {
		t.Fatalf("after restart: %v, %v", list, err)
	}

	for _, q := range []string{"registry.test/team/app:1", "registry.test/team/named:1"} {
		if _, err := is.RemoveImage(ctx(t), &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: q}}); err != nil {
			t.Fatal(err)
		}
	}
	st, err = is.ImageStatus(ctx(t), &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: id}})
	if err != nil || st.Image != nil {
		t.Fatalf("removed image still there: %v %v", st, err)
	}
	if _, err := is.RemoveImage(ctx(t), &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: id}}); err != nil {
		t.Fatalf("removing a missing image must succeed: %v", err)
	}
	assertNoImageFiles(t, d)

	if _, err := pull(t, is, "registry.test/team/none:1", nil); status.Code(err) != codes.NotFound {
		t.Fatalf("missing image: %v", err)
	}
	if _, err := pull(t, is, "Not A Reference", nil); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("bad reference: %v", err)
	}
}

func assertNoImageFiles(t *testing.T, d *framework.Daemon) {
	t.Helper()
	for _, sub := range []string{"snapshots", "content/blobs", "content/ingest"} {
		_ = filepath.WalkDir(filepath.Join(d.Root, sub), func(p string, de fs.DirEntry, err error) error {
			if err == nil && !de.IsDir() {
				t.Errorf("left behind: %s", p)
			}
			return nil
		})
	}
}

func TestPullBasicAuth(t *testing.T) {
	storage := pushFixtures(t)
	reg := registry.StartDistribution(t, registry.DistributionOptions{Storage: storage, Htpasswd: registry.Htpasswd(t, "alice", "s3cret")})
	certs := hostsDir(t, fmt.Sprintf("server = \"http://%s\"\n", reg.Host))
	d := framework.NewDaemon(t, fmt.Sprintf("[registry]\nconfig_path = %q\n", certs))
	d.Start()
	_, is := d.Clients()
	if _, err := pull(t, is, "registry.test/team/app:1", nil); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("without credentials: %v", err)
	}
	if _, err := pull(t, is, "registry.test/team/app:1", &runtimeapi.AuthConfig{Username: "alice", Password: "wrong"}); err == nil {
		t.Fatal("wrong password accepted")
	}
	// Credentials for another registry are not sent here.
	if _, err := pull(t, is, "registry.test/team/app:1", &runtimeapi.AuthConfig{Username: "alice", Password: "s3cret", ServerAddress: "other.example"}); err == nil {
		t.Fatal("credentials of another server were used")
	}
	if _, err := pull(t, is, "registry.test/team/app:1", &runtimeapi.AuthConfig{Username: "alice", Password: "s3cret", ServerAddress: "registry.test"}); err != nil {
		t.Fatal(err)
	}

	// The inline config form: credentials for the endpoint host.
	d2 := framework.NewDaemon(t, fmt.Sprintf("[registry]\nconfig_path = %q\n[registry.configs.%q.auth]\nauth = %q\n",
		certs, reg.Host, "YWxpY2U6czNjcmV0")) // base64("alice:s3cret")
	d2.Start()
	_, is2 := d2.Clients()
	if _, err := pull(t, is2, "registry.test/team/app:1", nil); err != nil {
		t.Fatal(err)
	}
}

func TestPullTokenAuth(t *testing.T) {
	storage := pushFixtures(t)
	ts := registry.NewTokenServer(t, "bob", "hunter2")
	reg := registry.StartDistribution(t, registry.DistributionOptions{Storage: storage, Token: ts})
	certs := hostsDir(t, fmt.Sprintf("server = \"http://%s\"\n", reg.Host))
	d := framework.NewDaemon(t, fmt.Sprintf("[registry]\nconfig_path = %q\n", certs))
	d.Start()
	_, is := d.Clients()
	if _, err := pull(t, is, "registry.test/team/app:1", &runtimeapi.AuthConfig{Username: "bob", Password: "nope"}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("bad token credentials: %v", err)
	}
	if _, err := pull(t, is, "registry.test/team/app:1", &runtimeapi.AuthConfig{Username: "bob", Password: "hunter2"}); err != nil {
		t.Fatal(err)
	}
	if ts.Requests.Load() == 0 {
		t.Fatal("the token server was never asked")
	}
}

func TestPullTLS(t *testing.T) {
	storage := pushFixtures(t)
	ca := registry.NewCA(t)
	reg := registry.StartDistribution(t, registry.DistributionOptions{Storage: storage, TLS: ca})
	for _, tc := range []struct {
		name, hosts string
		ok          bool
	}{
		{"ca from hosts.toml", fmt.Sprintf("server = \"https://%s\"\nca = %q\n", reg.Host, ca.CAFile), true},
		{"skip_verify", fmt.Sprintf("server = \"https://%s\"\nskip_verify = true\n", reg.Host), true},
		{"unknown ca", fmt.Sprintf("server = \"https://%s\"\n", reg.Host), false},
		{"mirror with ca", fmt.Sprintf("server = \"https://127.0.0.1:1\"\n[host.\"https://%s\"]\n  ca = %q\n", reg.Host, ca.CAFile), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := framework.NewDaemon(t, fmt.Sprintf("[registry]\nconfig_path = %q\n", hostsDir(t, tc.hosts)))
			d.Start()
			_, is := d.Clients()
			_, err := pull(t, is, "registry.test/team/app:1", nil)
			if tc.ok && err != nil {
				t.Fatal(err)
			}
			if !tc.ok && (err == nil || !strings.Contains(err.Error(), "certificate")) {
				t.Fatalf("want a certificate error, got %v", err)
			}
		})
	}
}

func TestKilledPullLeavesNothing(t *testing.T) {
	reg := registry.NewInProcess(t)
	img := registry.BuildImage(t, imagebuild.Config{},
		[]imagebuild.Entry{imagebuild.File("a", 0o644, []byte("a"))},
		[]imagebuild.Entry{imagebuild.File("b", 0o644, []byte("b"))})
	ref := registry.Push(t, reg.Host, "slow/app:1", img)
	layers, _ := img.Layers()
	stall, _ := layers[1].Digest()
	arrived := make(chan struct{}, 1)
	reg.SetIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasSuffix(r.URL.Path, stall.String()) {
			select {
			case arrived <- struct{}{}:
			default:
			}
			<-r.Context().Done()
			return true
		}
		return false
	})
	d := framework.NewDaemon(t, "")
	d.Start()
	_, is := d.Clients()
	go func() { _, _ = pull(t, is, ref, nil) }()
	select {
	case <-arrived:
	case <-time.After(20 * time.Second):
		t.Fatal("pull never reached the stalled layer")
	}
	time.Sleep(100 * time.Millisecond) // let the first layer land
	d.Kill()
	reg.SetIntercept(nil)

	d.Start()
	_, is = d.Clients()
	list, err := is.ListImages(ctx(t), &runtimeapi.ListImagesRequest{})
	if err != nil || len(list.Images) != 0 {
		t.Fatalf("a killed pull left an image: %v %v", list, err)
	}
	assertNoImageFiles(t, d)
	// And the pull works now.
	if _, err := pull(t, is, ref, nil); err != nil {
		t.Fatal(err)
	}
}
