package images

import (
	"io/fs"

	"github.com/cri-rt/cri-rt/pkg/imagebuild"
)

const nginxIndex = `<!DOCTYPE html>
<html>
<head><title>Welcome to nginx!</title></head>
<body>
<h1>Welcome to nginx!</h1>
<p>cri-rt critest stand-in for nginx.</p>
</body>
</html>
`

// nginxContent is shared by both nginx images (one blob): the web server
// installed as /usr/sbin/nginx so the process name is "nginx" (the HostPID
// spec runs `pidof nginx`), the document root and /var/run for the pid
// file.
func nginxContent(p map[string]string) []imagebuild.Entry {
	return []imagebuild.Entry{
		imagebuild.HostFile("/usr/sbin/nginx", 0o755, p["webserver"]),
		imagebuild.File("/usr/share/nginx/html/index.html", 0o644, []byte(nginxIndex)),
		imagebuild.File("/usr/share/nginx/html/50x.html", 0o644, []byte("<html><body><h1>An error occurred.</h1></body></html>\n")),
		imagebuild.Dir("/var/run", 0o755),
		imagebuild.Dir("/var/cache/nginx", 0o755),
	}
}

// nginxSpec builds an nginx stand-in. The upstream images differ only in
// the port (hostnet-nginx listens on 12003 for the host-network
// port-forward spec) and base version; the config mirrors the official
// nginx image (CMD, exposed port 80, stop signal).
func nginxSpec(name, ref, version, addr, stop string, index bool) Spec {
	return Spec{Name: name, Refs: []string{ref}, Busybox: true, LayerKey: "nginx", Content: nginxContent,
		Config: imagebuild.Config{
			Cmd: []string{"nginx", "-g", "daemon off;"},
			Env: []string{pathEnv,
				"NGINX_VERSION=" + version,
				"WEBSERVER_NAME=nginx",
				"WEBSERVER_ADDR=" + addr,
				"WEBSERVER_ROOT=/usr/share/nginx/html",
				"WEBSERVER_PIDFILE=/var/run/nginx.pid",
				// The ContainerPID spec greps /proc/1/cmdline for this.
				"WEBSERVER_TITLE=nginx: master process nginx -g daemon off;",
			},
			ExposedPorts: []string{"80/tcp"},
			StopSignal:   stop,
		},
		Format: imagebuild.Docker, Index: index}
}

// httpdSpec is the httpd stand-in for the multi-container specs: it serves
// port 80 and logs a line containing "httpd". Layout and CMD follow the
// official httpd image (httpd-foreground script execing httpd).
func httpdSpec() Spec {
	const prefix = "/usr/local/apache2"
	return Spec{Name: "e2e-httpd", Refs: []string{e2ePrefix + "httpd:2.4.39-4"}, Busybox: true, LayerKey: "httpd",
		Content: func(p map[string]string) []imagebuild.Entry {
			return []imagebuild.Entry{
				imagebuild.HostFile(prefix+"/bin/httpd", 0o755, p["webserver"]),
				imagebuild.File("/usr/local/bin/httpd-foreground", 0o755,
					[]byte("#!/bin/sh\nset -e\nrm -f "+prefix+"/logs/httpd.pid\nexec httpd -DFOREGROUND \"$@\"\n")),
				imagebuild.File(prefix+"/htdocs/index.html", 0o644, []byte("<html><body><h1>It works!</h1></body></html>\n")),
				imagebuild.Dir(prefix+"/logs", 0o755),
			}
		},
		Config: imagebuild.Config{
			Cmd:        []string{"httpd-foreground"},
			WorkingDir: prefix,
			Env: []string{
				"PATH=" + prefix + "/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
				"HTTPD_PREFIX=" + prefix,
				"WEBSERVER_NAME=httpd",
				"WEBSERVER_ADDR=:80",
				"WEBSERVER_ROOT=" + prefix + "/htdocs",
				"WEBSERVER_PIDFILE=" + prefix + "/logs/httpd.pid",
			},
			ExposedPorts: []string{"80/tcp"},
		},
		Format: imagebuild.Docker, Index: true}
}

// nnpContent installs the effective-uid printer set-uid and set-gid root,
// as the upstream Dockerfile does with `chmod +s`.
func nnpContent(p map[string]string) []imagebuild.Entry {
	return []imagebuild.Entry{
		imagebuild.HostFile("/usr/local/bin/nnp", 0o755|fs.ModeSetuid|fs.ModeSetgid, p["nnp"]),
	}
}
