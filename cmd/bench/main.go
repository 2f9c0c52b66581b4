// Command bench measures Slipway against a baseline measured in the same
// run, and prints a small table (make bench):
//
//   - a 1 GiB artifact uploaded through Slipway vs a direct minio-go
//     PutObject of the same bytes to the same MinIO, as a throughput ratio,
//     with Slipway's peak RSS (VmHWM) over the run;
//   - GET of a version's JSON at concurrency 32: throughput, p50, p99;
//   - a page deep in a model with 100k versions vs its first page;
//   - the upstream lineage (depth 10) of model and dataset versions in a
//     graph of 100k nodes and 300k edges vs the same walk SQL run directly
//     (lineage.go);
//   - OpenLineage RunEvents ingested at concurrency 8 vs a plain jsonb
//     INSERT per event, and a replay that must add no rows (openlineage.go).
//
// It starts bin/slipway as a process of its own (so that its memory is its
// own) on a fresh database and bucket of the local services, and removes
// them afterwards.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"mime/multipart"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/slipway-ml/slipway/internal/pagination"
)

func main() {
	size := flag.Int64("size", 1<<30, "bytes of the upload benchmark")
	versions := flag.Int("versions", 100_000, "versions of the listing benchmark")
	getFor := flag.Duration("get-for", 5*time.Second, "how long the GET benchmark runs")
	bin := flag.String("bin", "bin/slipway", "the slipway binary")
	var lo lineageOptions
	flag.IntVar(&lo.nodes, "lineage-nodes", 100_000, "nodes of the lineage graph (45% dataset versions, 45% runs, 10% model versions)")
	flag.IntVar(&lo.edges, "lineage-edges", 300_000, "edges of the lineage graph (approximate: the exact count is printed)")
	flag.IntVar(&lo.queries, "lineage-queries", 200, "upstream queries of model versions, and again of dataset versions")
	flag.BoolVar(&lo.explain, "explain", false, "print EXPLAIN (ANALYZE, BUFFERS) of the lineage walk and of the API's edges query for the median and the slowest root")
	var oo olOptions
	flag.IntVar(&oo.events, "ol-events", 4000, "OpenLineage events ingested (START and COMPLETE of half as many runs)")
	flag.IntVar(&oo.replay, "ol-replay", 500, "events sent a second time, which must add no rows")
	flag.IntVar(&olConcurrency, "ol-concurrency", olConcurrency, "clients POSTing OpenLineage events at once (and connections of the baseline)")
	only := flag.String("only", "", "run only these benchmarks, comma-separated: upload, get, list, lineage, openlineage, promotion, webhooks (default all)")
	flag.Parse()
	sel, err := parseOnly(*only)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if lo.nodes < 1000 || lo.edges < lo.nodes || lo.queries < 1 || oo.events < 2 || oo.replay < 0 {
		fmt.Fprintln(os.Stderr, "bench: -lineage-nodes must be at least 1000, -lineage-edges at least as many, -lineage-queries and -ol-replay at least 1 and 0, -ol-events at least 2")
		os.Exit(2)
	}
	if err := run(*bin, *size, *versions, *getFor, lo, oo, sel); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

var benchmarks = []string{"upload", "get", "list", "lineage", "openlineage", "promotion", "webhooks"}

// parseOnly reads -only: the set of benchmarks to run.
func parseOnly(only string) (map[string]bool, error) {
	sel := map[string]bool{}
	if only == "" {
		for _, b := range benchmarks {
			sel[b] = true
		}
		return sel, nil
	}
	for _, b := range strings.Split(only, ",") {
		b = strings.TrimSpace(b)
		if !slices.Contains(benchmarks, b) {
			return nil, fmt.Errorf("-only: unknown benchmark %q (want some of %s)", b, strings.Join(benchmarks, ", "))
		}
		sel[b] = true
	}
	return sel, nil
}

func need(name string) string {
	v := os.Getenv(name)
	if v == "" {
		fmt.Fprintf(os.Stderr, "bench: %s is not set (run through make bench)\n", name)
		os.Exit(2)
	}
	return v
}

func run(bin string, size int64, nVersions int, getFor time.Duration, lo lineageOptions, oo olOptions, sel map[string]bool) error {
	ctx := context.Background()
	adminURL := need("SLIPWAY_TEST_DATABASE_URL")
	endpoint, ak, sk := need("SLIPWAY_TEST_S3_ENDPOINT"), need("SLIPWAY_TEST_S3_ACCESS_KEY"), need("SLIPWAY_TEST_S3_SECRET_KEY")
	suffix := randHex(6)
	dbName, bucket := "slipway_bench_"+suffix, "slipway-bench-"+suffix

	admin, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+dbName); err != nil {
		return err
	}
	defer admin.Exec(context.Background(), "DROP DATABASE "+dbName+" WITH (FORCE)")
	u, _ := url.Parse(adminURL)
	u.Path = "/" + dbName
	dbURL := u.String()

	eu, _ := url.Parse(endpoint)
	mc, err := minio.New(eu.Host, &minio.Options{Creds: credentials.NewStaticV4(ak, sk, ""), Secure: eu.Scheme == "https"})
	if err != nil {
		return err
	}
	defer mc.RemoveBucketWithOptions(context.Background(), bucket, minio.RemoveBucketOptions{ForceDelete: true})

	token := "slw_" + base64.RawURLEncoding.EncodeToString(randBytes(32))
	addr := freeAddr()
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(),
		"SLIPWAY_ADDR="+addr, "SLIPWAY_DATABASE_URL="+dbURL, "SLIPWAY_S3_ENDPOINT="+endpoint, "SLIPWAY_S3_BUCKET="+bucket,
		"SLIPWAY_S3_ACCESS_KEY="+ak, "SLIPWAY_S3_SECRET_KEY="+sk, "SLIPWAY_BOOTSTRAP_TOKEN="+token, "SLIPWAY_BOOTSTRAP_PASSWORD=",
		"SLIPWAY_LOG_LEVEL=warn", "SLIPWAY_DB_MAX_CONNS=40")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }()
	base := "http://" + addr
	if err := waitReady(base); err != nil {
		return err
	}
	c := &client{base: base, token: token}
	if err := c.json("POST", "/api/v1/models", `{"name":"bench"}`, 201); err != nil {
		return err
	}

	var rows []string
	mib := float64(size) / (1 << 20)

	// 1. Upload: direct to MinIO first (the baseline), then through Slipway.
	switch {
	case sel["upload"]:
		start := time.Now()
		if _, err := mc.PutObject(ctx, bucket, "baseline/blob", io.LimitReader(newGen(1), size), size, minio.PutObjectOptions{}); err != nil {
			return fmt.Errorf("direct put: %w", err)
		}
		direct := time.Since(start)
		mc.RemoveObject(ctx, bucket, "baseline/blob", minio.RemoveObjectOptions{})
		start = time.Now()
		if err := c.upload("/api/v1/models/bench/versions", size, newGen(1)); err != nil {
			return fmt.Errorf("upload through Slipway: %w", err)
		}
		through := time.Since(start)
		hwm, err := peakRSS(cmd.Process.Pid)
		if err != nil {
			return err
		}
		rows = append(rows,
			fmt.Sprintf("| upload %.0f MiB | direct PutObject %.1f MiB/s | %.1f MiB/s | %.2f of direct | ≥ 0.9 |",
				mib, mib/direct.Seconds(), mib/through.Seconds(), direct.Seconds()/through.Seconds()),
			fmt.Sprintf("| Slipway peak RSS (VmHWM, after the upload) | | %.1f MiB | | < 100 MiB |", float64(hwm)/(1<<20)))
	case sel["get"]:
		// the GET benchmark reads version 1: a small one will do
		if err := c.upload("/api/v1/models/bench/versions", 1024, newGen(1)); err != nil {
			return fmt.Errorf("upload through Slipway: %w", err)
		}
	}

	// 2. GET of the version's JSON at concurrency 32.
	if sel["get"] {
		lat, n := c.hammer("/api/v1/models/bench/versions/1", 32, getFor)
		rows = append(rows, fmt.Sprintf("| GET version JSON, concurrency 32, %v | | %.0f req/s, p50 %v, p99 %v | | |",
			getFor, float64(n)/getFor.Seconds(), pct(lat, 50), pct(lat, 99)))
	}

	// 3. Listing: 100k versions, first page vs a deep page.
	if sel["list"] {
		if err := seedVersions(ctx, dbURL, nVersions); err != nil {
			return err
		}
		first := c.median("/api/v1/models/bench/versions?limit=50", 200)
		deep := c.median("/api/v1/models/bench/versions?limit=50&cursor="+pagination.Encode(map[string]int{"v": 150}), 200)
		rows = append(rows, fmt.Sprintf("| list versions (%d), page of 50 | first page p50 %v | deep page p50 %v | %.2f× | within 2× |",
			nVersions, first, deep, float64(deep)/float64(first)))
	}

	// 4. Lineage: upstream walks in a seeded graph, through HTTP vs the
	// walk's SQL alone.
	if sel["lineage"] {
		r, err := benchLineage(ctx, c, dbURL, cmd.Process.Pid, lo)
		if err != nil {
			return fmt.Errorf("lineage: %w", err)
		}
		rows = append(rows, r...)
	}

	// 5. OpenLineage ingestion, and a replay that must add nothing.
	if sel["openlineage"] {
		r, err := benchOpenLineage(ctx, c, dbURL, cmd.Process.Pid, oo)
		if err != nil {
			return fmt.Errorf("openlineage: %w", err)
		}
		rows = append(rows, r...)
	}
	// 6. Promotions: policy evaluation against reports of 1,000 metrics.
	if sel["promotion"] {
		r, err := benchPromotion(c, getFor)
		if err != nil {
			return fmt.Errorf("promotion: %w", err)
		}
		rows = append(rows, r...)
	}
	// 7. Webhooks: delivery rate and commit-to-delivery latency.
	if sel["webhooks"] {
		r, err := benchWebhooks(ctx, c, dbURL, 2000)
		if err != nil {
			return fmt.Errorf("webhooks: %w", err)
		}
		rows = append(rows, r...)
	}
	if hwm, err := peakRSS(cmd.Process.Pid); err == nil {
		progress("Slipway peak RSS after every benchmark: %.1f MiB", float64(hwm)/(1<<20))
	}

	fmt.Println()
	fmt.Println("| benchmark | baseline | Slipway | ratio | goal |")
	fmt.Println("|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Println(r)
	}
	return nil
}

// progress reports a step on stderr, so that the table alone is on stdout.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

// gen is a fast reproducible byte stream (ChaCha8).
func newGen(seed byte) io.Reader {
	var s [32]byte
	s[0] = seed
	return mrand.NewChaCha8(s)
}

type client struct {
	base, token string
	http        http.Client
}

func (c *client) do(method, path string, body io.Reader, ct string) (*http.Response, error) {
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	return c.http.Do(req)
}

func (c *client) json(method, path, body string, want int) error {
	res, err := c.do(method, path, strings.NewReader(body), "application/json")
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != want {
		b, _ := io.ReadAll(res.Body)
		return fmt.Errorf("%s %s: %d %s", method, path, res.StatusCode, b)
	}
	return nil
}

func (c *client) upload(path string, size int64, r io.Reader) error {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", `form-data; name="metadata"`)
		w, _ := mw.CreatePart(h)
		io.WriteString(w, `{"framework":"bench"}`)
		h = textproto.MIMEHeader{}
		h.Set("Content-Disposition", `form-data; name="file"; filename="weights/model.bin"`)
		w, _ = mw.CreatePart(h)
		if _, err := io.Copy(w, io.LimitReader(r, size)); err != nil {
			pw.CloseWithError(err)
			return
		}
		pw.CloseWithError(mw.Close())
	}()
	res, err := c.do("POST", path, pr, mw.FormDataContentType())
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != 201 {
		b, _ := io.ReadAll(res.Body)
		return fmt.Errorf("%d %s", res.StatusCode, b)
	}
	return nil
}

// hammer GETs path from n workers for d and returns every latency.
func (c *client) hammer(path string, n int, d time.Duration) ([]time.Duration, int) {
	var mu sync.Mutex
	var all []time.Duration
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	tr := &http.Transport{MaxIdleConnsPerHost: n}
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := &client{base: c.base, token: c.token, http: http.Client{Transport: tr}}
			var mine []time.Duration
			for time.Now().Before(deadline) {
				t := time.Now()
				res, err := cl.do("GET", path, nil, "")
				if err != nil {
					continue
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode == 200 {
					mine = append(mine, time.Since(t))
				}
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return all, len(all)
}

// median is the median latency of n sequential GETs of path.
func (c *client) median(path string, n int) time.Duration {
	var lat []time.Duration
	for i := 0; i < n; i++ {
		t := time.Now()
		res, err := c.do("GET", path, nil, "")
		if err != nil {
			continue
		}
		var body struct{ Items []json.RawMessage }
		json.NewDecoder(res.Body).Decode(&body)
		res.Body.Close()
		if res.StatusCode == 200 && len(body.Items) > 0 {
			lat = append(lat, time.Since(t))
		}
	}
	return pct(lat, 50)
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[min(len(d)-1, len(d)*p/100)].Round(10 * time.Microsecond)
}

// seedVersions inserts n ready versions of model bench straight into the
// database (one artifact row each), as years of registrations would.
func seedVersions(ctx context.Context, dbURL string, n int) error {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `
		WITH m AS (SELECT id FROM models WHERE name = 'bench'),
		v AS (
			INSERT INTO model_versions (model_id, version, status, kind, storage_prefix, ready_at)
			SELECT m.id, g, 'ready', 'model', 'bench/' || g, now() FROM m, generate_series(2, $1 + 1) g
			RETURNING id, version)
		INSERT INTO model_artifacts (version_id, path, size, sha256, content_type, object_key, uploaded_at, verified)
		SELECT id, 'model.bin', 1, repeat('0', 64), 'application/octet-stream', 'bench/' || version || '/0', now(), true FROM v`, n)
	if err != nil {
		return fmt.Errorf("seed versions: %w", err)
	}
	if _, err := conn.Exec(ctx, `UPDATE models SET next_version = $1 + 2 WHERE name = 'bench'`, n); err != nil {
		return err
	}
	_, err = conn.Exec(ctx, `ANALYZE model_versions, model_artifacts`)
	return err
}

func peakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			var kb int64
			fmt.Sscan(f[1], &kb)
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

func waitReady(base string) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if res, err := http.Get(base + "/readyz"); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("slipway not ready at %s", base)
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func randHex(n int) string { return hex.EncodeToString(randBytes(n)) }

// cpuUse samples CPU time (in clock ticks of 1/100 s): Slipway's process,
// the bench's own, and the machine's busy time, so that a phase can say
// what each used; the rest is PostgreSQL, MinIO and anything else running.
type cpuUse struct {
	at                     time.Time
	slipway, bench, system int64
}

func sampleCPU(pid int) cpuUse {
	u := cpuUse{at: time.Now(), slipway: procTicks(fmt.Sprint(pid)), bench: procTicks("self")}
	b, _ := os.ReadFile("/proc/stat")
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal …
	for i, v := range f {
		var n int64
		fmt.Sscan(v, &n)
		if i >= 1 && i <= 8 && i != 4 && i != 5 {
			u.system += n
		}
	}
	return u
}

// procTicks is the user and system time of a process.
func procTicks(pid string) int64 {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	_, rest, _ := strings.Cut(string(b), ") ") // after the command name
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	var ut, st int64
	fmt.Sscan(f[11], &ut)
	fmt.Sscan(f[12], &st)
	return ut + st
}

// since says what each used between u and now.
func (u cpuUse) since(pid int) string {
	n := sampleCPU(pid)
	s := func(t int64) float64 { return float64(t) / 100 }
	return fmt.Sprintf("%.1fs wall: CPU Slipway %.1fs, bench %.1fs, rest (PostgreSQL, MinIO…) %.1fs",
		n.at.Sub(u.at).Seconds(), s(n.slipway-u.slipway), s(n.bench-u.bench), s(n.system-u.system-(n.slipway-u.slipway)-(n.bench-u.bench)))
}
