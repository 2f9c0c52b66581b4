package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/slipway-ml/slipway/internal/client"
)

// docBlocks returns the fenced code blocks of language lang between
// <!-- name:begin --> and <!-- name:end --> in a document.
func docBlocks(t *testing.T, doc, name, lang string) string {
	t.Helper()
	_, rest, ok := strings.Cut(doc, "<!-- "+name+":begin -->")
	section, _, ok2 := strings.Cut(rest, "<!-- "+name+":end -->")
	if !ok || !ok2 {
		t.Fatalf("no %s markers", name)
	}
	var blocks []string
	for {
		_, after, ok := strings.Cut(section, "```"+lang+"\n")
		if !ok {
			break
		}
		block, after, ok := strings.Cut(after, "```\n")
		if !ok {
			t.Fatalf("%s: a ```%s block is not closed", name, lang)
		}
		blocks = append(blocks, block)
		section = after
	}
	if len(blocks) == 0 {
		t.Fatalf("%s: no ```%s block", name, lang)
	}
	return strings.Join(blocks, "\n")
}

func readDoc(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Following docs/ci.md literally, with curl only, registers a new version,
// attaches a report and gets a decision: the once-per-model step runs with
// an admin's token, the walkthrough with the CI user's (contributor), in an
// empty folder, under bash -e: every command must succeed, the last one
// only when the version was promoted.
func TestCIDocCurlWalkthrough(t *testing.T) {
	doc := readDoc(t, "docs/ci.md")
	setup := docBlocks(t, doc, "ci-curl-setup", "sh")
	walkthrough := docBlocks(t, doc, "ci-curl", "sh")
	for _, tool := range []string{"jq", "python", "slipway "} {
		if strings.Contains(setup+walkthrough, tool) {
			t.Errorf("the curl walkthrough uses %s", tool)
		}
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatal("bash is needed: ", err)
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is needed: ", err)
	}
	s := startCIServer(t)
	dir := t.TempDir()
	sh := func(script, token string) string {
		t.Helper()
		cmd := exec.Command(bash, "-e", "-u", "-o", "pipefail", "-c", script)
		cmd.Dir = dir
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "LC_ALL=C", "SLIPWAY_URL=" + s.base, "SLIPWAY_TOKEN=" + token}
		out, err := cmd.CombinedOutput()
		t.Logf("%s", out)
		if err != nil {
			t.Fatalf("%v", err)
		}
		return string(out)
	}
	sh(setup, bootstrapToken)
	out := sh(walkthrough, s.ciToken)

	ctx := context.Background()
	v, err := s.admin.GetVersion(ctx, "churn", 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Artifacts) != 1 || v.Artifacts[0].Path != "model/model.pkl" || v.Framework != "sklearn" || v.CreatedBy != "ci-training" {
		t.Errorf("the version: %+v", v)
	}
	reports, err := s.admin.ListReports(ctx, "churn", 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(reports) != 1 || reports[0].Suite != "offline" || reports[0].MetricCount == 0 {
		t.Errorf("the reports: %+v", reports)
	}
	promotions, err := s.admin.ListPromotions(ctx, client.PromotionFilter{Model: "churn"})
	if err != nil {
		t.Fatal(err)
	}
	if len(promotions) != 1 || promotions[0].Stage != "staging" || promotions[0].Status != client.Promoted || promotions[0].RequestedBy != "ci-training" {
		t.Fatalf("the promotions: %+v", promotions)
	}
	if st, err := s.admin.GetStage(ctx, "churn", "staging"); err != nil || st.Version != 1 {
		t.Errorf("staging: %+v, %v", st, err)
	}
	for _, want := range []string{"registered churn version 1\n", "attached report 1\n", "promotion 1: promoted\n", "promotion 1: promoted: every rule passed\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("the walkthrough did not print %q", want)
		}
	}
}

// The Python shown in docs/ci.md is examples/ci/slipway_ci.py, byte for byte.
func TestCIDocPythonIsTheExample(t *testing.T) {
	shown := docBlocks(t, readDoc(t, "docs/ci.md"), "ci-python", "python")
	file := readDoc(t, "examples/ci/slipway_ci.py")
	if d := cmp.Diff(file, shown); d != "" {
		t.Errorf("docs/ci.md and examples/ci/slipway_ci.py differ (-file +doc):\n%s", d)
	}
}
