package dashboards_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/opsmetrics/opsmetrics/dashboards"
)

// fakeGrafana is a Grafana HTTP API that keeps state: folders, data sources
// and dashboards with versions. It checks every request against Grafana's
// documented API (https://grafana.com/docs/grafana/latest/developers/http_api/):
// the path and method, the JSON body's fields, the auth and org headers.
// Anything else fails the test. It behaves as Grafana does where it
// matters here: 404 for a missing object, 409 for a duplicate, 412 on a
// version mismatch or a title already taken in the folder without
// overwrite, and, with overwrite, the replacement of another dashboard
// with the same title in the folder (as Grafana's legacy store does).
type fakeGrafana struct {
	t   *testing.T
	srv *httptest.Server
	// The credentials a request must carry: Bearer token, or basic auth.
	token, user, password string
	org                   string // want X-Grafana-Org-Id; "" for none
	prefix                string // the sub-path Grafana is served under

	mu          sync.Mutex
	nextID      int64
	folders     map[string]*fakeFolder
	dataSources map[string]*fakeDataSource
	dashboards  map[string]*fakeDashboard
	calls       []string                    // "METHOD /api/path", in order
	posted      map[string][]map[string]any // dashboard uid → POST /api/dashboards/db bodies
	foreign     map[string]bool             // UIDs no request may name
	// fail, when set, answers a request instead of the fake: it gets the
	// decoded body (nil for none) and returns nil to let the fake answer.
	fail func(r *http.Request, body map[string]any) *reply
}

type fakeFolder struct {
	ID      int64
	Title   string
	Version int64
}

type fakeDataSource struct {
	ID       int64
	Fields   map[string]any // name, type, access, url, jsonData, ...
	Secure   map[string]string
	Version  int64
	ReadOnly bool
}

type fakeDashboard struct {
	Model     map[string]any // with id, uid and version, as Grafana stores it
	FolderUID string
	Version   int64
}

type reply struct {
	status      int
	contentType string // application/json when empty
	body        string
}

func newFakeGrafana(t *testing.T) *fakeGrafana {
	f := &fakeGrafana{t: t, token: "glsa_fake_token_Zq81", folders: map[string]*fakeFolder{},
		dataSources: map[string]*fakeDataSource{}, dashboards: map[string]*fakeDashboard{},
		posted: map[string][]map[string]any{}, foreign: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/folders/{uid}", f.getFolder)
	mux.HandleFunc("POST /api/folders", f.createFolder)
	mux.HandleFunc("PUT /api/folders/{uid}", f.updateFolder)
	mux.HandleFunc("GET /api/datasources/uid/{uid}", f.getDataSource)
	mux.HandleFunc("POST /api/datasources", f.addDataSource)
	mux.HandleFunc("PUT /api/datasources/uid/{uid}", f.updateDataSource)
	mux.HandleFunc("GET /api/dashboards/uid/{uid}", f.getDashboard)
	mux.HandleFunc("POST /api/dashboards/db", f.postDashboard)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("fake grafana: %s %s is not an endpoint provisioning should call", r.Method, r.URL.Path)
		f.send(w, reply{status: http.StatusNotFound, body: `{"message":"Not found"}`})
	})
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.serve(w, r, mux)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// URL is the Grafana URL to provision to.
func (f *fakeGrafana) URL() string { return f.srv.URL + f.prefix }

// serve checks what every request must have, records it, and routes it.
func (f *fakeGrafana) serve(w http.ResponseWriter, r *http.Request, mux http.Handler) {
	t := f.t
	path, ok := strings.CutPrefix(r.URL.Path, f.prefix)
	if !ok {
		t.Errorf("fake grafana: %s %s: not under %s", r.Method, r.URL.Path, f.prefix)
	}
	r.URL.Path = path
	what := r.Method + " " + path
	if f.token != "" {
		if got := r.Header.Get("Authorization"); got != "Bearer "+f.token {
			t.Errorf("fake grafana: %s: Authorization %q, want the bearer token", what, got)
		}
	} else if u, p, ok := r.BasicAuth(); !ok || u != f.user || p != f.password {
		t.Errorf("fake grafana: %s: want basic auth as %q", what, f.user)
	}
	if got := r.Header.Get("X-Grafana-Org-Id"); got != f.org {
		t.Errorf("fake grafana: %s: X-Grafana-Org-Id %q, want %q", what, got, f.org)
	}
	if !strings.Contains(r.Header.Get("Accept"), "application/json") {
		t.Errorf("fake grafana: %s: Accept %q, want application/json", what, r.Header.Get("Accept"))
	}
	var body map[string]any
	b, _ := io.ReadAll(r.Body)
	switch r.Method {
	case http.MethodPost, http.MethodPut:
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("fake grafana: %s: Content-Type %q, want application/json", what, ct)
		}
		if err := json.Unmarshal(b, &body); err != nil {
			t.Errorf("fake grafana: %s: body is not a JSON object: %v\n%s", what, err, b)
		}
	default:
		if len(b) != 0 {
			t.Errorf("fake grafana: %s: unexpected body %s", what, b)
		}
	}
	for uid := range f.foreign {
		if strings.Contains(path, uid) || bytes.Contains(b, []byte(`"uid":"`+uid+`"`)) {
			t.Errorf("fake grafana: %s names %s, which opsmetrics does not own", what, uid)
		}
	}
	f.mu.Lock()
	f.calls = append(f.calls, what)
	fail := f.fail
	f.mu.Unlock()
	if fail != nil {
		if rep := fail(r, body); rep != nil {
			f.send(w, *rep)
			return
		}
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	mux.ServeHTTP(w, r)
}

func (f *fakeGrafana) send(w http.ResponseWriter, rep reply) {
	ct := rep.contentType
	if ct == "" {
		ct = "application/json"
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(rep.status)
	io.WriteString(w, rep.body)
}

func (f *fakeGrafana) json(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		f.t.Errorf("fake grafana: %v", err)
	}
	f.send(w, reply{status: status, body: string(b)})
}

func (f *fakeGrafana) message(w http.ResponseWriter, status int, msg, reason string) {
	f.json(w, status, map[string]any{"message": msg, "status": reason})
}

// decode reads the body of r into a JSON object, and fails the test when
// it has a field the endpoint does not document, or lacks a required one.
func (f *fakeGrafana) decode(r *http.Request, allowed, required []string) map[string]any {
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		return nil // serve reported it
	}
	for k := range body {
		if !slices.Contains(allowed, k) {
			f.t.Errorf("fake grafana: %s %s: field %q is not in Grafana's API", r.Method, r.URL.Path, k)
		}
	}
	for _, k := range required {
		if v, ok := body[k]; !ok || v == "" {
			f.t.Errorf("fake grafana: %s %s: field %q is required", r.Method, r.URL.Path, k)
		}
	}
	return body
}

func (f *fakeGrafana) id() int64 { f.nextID++; return f.nextID }

func (f *fakeGrafana) getFolder(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	uid := r.PathValue("uid")
	fo, ok := f.folders[uid]
	if !ok {
		f.message(w, http.StatusNotFound, "folder not found", "not-found")
		return
	}
	f.json(w, http.StatusOK, map[string]any{"id": fo.ID, "uid": uid, "title": fo.Title, "url": "/dashboards/f/" + uid,
		"hasAcl": false, "canSave": true, "canEdit": true, "canAdmin": true, "version": fo.Version})
}

func (f *fakeGrafana) createFolder(w http.ResponseWriter, r *http.Request) {
	body := f.decode(r, []string{"uid", "title", "description", "parentUid"}, []string{"title"})
	f.mu.Lock()
	defer f.mu.Unlock()
	uid, _ := body["uid"].(string)
	if _, ok := f.folders[uid]; ok {
		f.message(w, http.StatusConflict, "a folder with the same uid already exists", "")
		return
	}
	fo := &fakeFolder{ID: f.id(), Title: body["title"].(string), Version: 1}
	f.folders[uid] = fo
	f.json(w, http.StatusOK, map[string]any{"id": fo.ID, "uid": uid, "title": fo.Title, "version": fo.Version})
}

func (f *fakeGrafana) updateFolder(w http.ResponseWriter, r *http.Request) {
	body := f.decode(r, []string{"title", "description", "version", "overwrite"}, []string{"title"})
	f.mu.Lock()
	defer f.mu.Unlock()
	uid := r.PathValue("uid")
	fo, ok := f.folders[uid]
	if !ok {
		f.message(w, http.StatusNotFound, "folder not found", "not-found")
		return
	}
	if v, _ := body["version"].(float64); body["overwrite"] != true && int64(v) != fo.Version {
		f.message(w, http.StatusConflict, "the folder has been changed by someone else", "version-mismatch")
		return
	}
	fo.Title, fo.Version = body["title"].(string), fo.Version+1
	f.json(w, http.StatusOK, map[string]any{"id": fo.ID, "uid": uid, "title": fo.Title, "version": fo.Version})
}

// Data source fields of POST /api/datasources and PUT /api/datasources/uid/:uid.
var dataSourceFields = []string{"uid", "name", "type", "access", "url", "user", "database", "basicAuth", "basicAuthUser",
	"withCredentials", "isDefault", "jsonData", "secureJsonData"}

func (f *fakeGrafana) getDataSource(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	uid := r.PathValue("uid")
	ds, ok := f.dataSources[uid]
	if !ok {
		f.message(w, http.StatusNotFound, "Data source not found", "")
		return
	}
	out := map[string]any{"id": ds.ID, "uid": uid, "orgId": 1, "version": ds.Version, "readOnly": ds.ReadOnly,
		"typeLogoUrl": "public/img/logo.svg"}
	for k, v := range ds.Fields {
		out[k] = v
	}
	secure := map[string]bool{}
	for k := range ds.Secure {
		secure[k] = true
	}
	out["secureJsonFields"] = secure
	f.json(w, http.StatusOK, out)
}

func (f *fakeGrafana) addDataSource(w http.ResponseWriter, r *http.Request) {
	body := f.decode(r, dataSourceFields, []string{"name", "type", "access"})
	f.mu.Lock()
	defer f.mu.Unlock()
	uid, _ := body["uid"].(string)
	if _, ok := f.dataSources[uid]; ok {
		f.message(w, http.StatusConflict, "data source with the same uid already exists", "")
		return
	}
	for _, ds := range f.dataSources {
		if ds.Fields["name"] == body["name"] {
			f.message(w, http.StatusConflict, "data source with the same name already exists", "")
			return
		}
	}
	ds := &fakeDataSource{ID: f.id(), Version: 1, Fields: body, Secure: secureFields(body)}
	f.dataSources[uid] = ds
	f.json(w, http.StatusOK, map[string]any{"id": ds.ID, "name": body["name"], "message": "Datasource added",
		"datasource": map[string]any{"id": ds.ID, "uid": uid}})
}

func (f *fakeGrafana) updateDataSource(w http.ResponseWriter, r *http.Request) {
	body := f.decode(r, append(slices.Clone(dataSourceFields), "version"), []string{"name", "type", "access"})
	f.mu.Lock()
	defer f.mu.Unlock()
	uid := r.PathValue("uid")
	ds, ok := f.dataSources[uid]
	switch {
	case !ok:
		f.message(w, http.StatusNotFound, "Data source not found", "")
		return
	case ds.ReadOnly:
		f.message(w, http.StatusForbidden, "Cannot update read-only data source", "")
		return
	}
	if v, ok := body["version"].(float64); ok && int64(v) != ds.Version {
		f.message(w, http.StatusConflict, "Datasource has already been updated by someone else. Please reload and try again", "")
		return
	}
	// Grafana keeps the secure fields an update does not send.
	secure := ds.Secure
	for k, v := range secureFields(body) {
		secure[k] = v
	}
	delete(body, "version")
	ds.Fields, ds.Secure, ds.Version = body, secure, ds.Version+1
	f.json(w, http.StatusOK, map[string]any{"id": ds.ID, "name": body["name"], "message": "Datasource updated",
		"datasource": map[string]any{"id": ds.ID, "uid": uid}})
}

// secureFields takes secureJsonData out of a data source body: Grafana
// stores it encrypted and never returns it.
func secureFields(body map[string]any) map[string]string {
	out := map[string]string{}
	s, _ := body["secureJsonData"].(map[string]any)
	for k, v := range s {
		out[k], _ = v.(string)
	}
	delete(body, "secureJsonData")
	return out
}

func (f *fakeGrafana) getDashboard(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	uid := r.PathValue("uid")
	d, ok := f.dashboards[uid]
	if !ok {
		f.message(w, http.StatusNotFound, "Dashboard not found", "not-found")
		return
	}
	title := ""
	if fo, ok := f.folders[d.FolderUID]; ok {
		title = fo.Title
	}
	f.json(w, http.StatusOK, map[string]any{"dashboard": d.Model, "meta": map[string]any{
		"type": "db", "canSave": true, "canEdit": true, "canAdmin": true, "canStar": true, "slug": "slug",
		"url": "/d/" + uid + "/slug", "expires": "0001-01-01T00:00:00Z", "created": "2026-03-01T10:00:00Z",
		"updated": "2026-03-01T10:00:00Z", "updatedBy": "admin", "createdBy": "admin", "version": d.Version,
		"hasAcl": false, "isFolder": false, "folderUid": d.FolderUID, "folderTitle": title, "provisioned": false}})
}

func (f *fakeGrafana) postDashboard(w http.ResponseWriter, r *http.Request) {
	// UpdatedAt is in Grafana's OpenAPI spec (SaveDashboardCommand), and the
	// typed client always sends it, zero: Grafana then stamps the save
	// with its own clock, as it does without it.
	body := f.decode(r, []string{"dashboard", "folderUid", "message", "overwrite", "UpdatedAt"},
		[]string{"dashboard", "folderUid", "message"})
	if at, ok := body["UpdatedAt"]; ok {
		if s, _ := at.(string); !strings.HasPrefix(s, "0001-01-01T00:00:00") {
			f.t.Errorf("fake grafana: POST /api/dashboards/db: UpdatedAt %v, want none or the zero time", at)
		}
	}
	model, _ := jsonValue(f.t, body["dashboard"]).(map[string]any) // a copy: the body is kept as sent
	uid, _ := model["uid"].(string)
	title, _ := model["title"].(string)
	if uid == "" || title == "" {
		f.t.Errorf("fake grafana: POST /api/dashboards/db: dashboard without uid or title")
	}
	if id, ok := model["id"]; ok && id != nil {
		f.t.Errorf("fake grafana: POST /api/dashboards/db: dashboard.id %v: provisioning must not send one", id)
	}
	if v, ok := body["overwrite"]; ok && reflect.TypeOf(v).Kind() != reflect.Bool {
		f.t.Errorf("fake grafana: POST /api/dashboards/db: overwrite %v is not a boolean", v)
	}
	overwrite := body["overwrite"] == true
	folder, _ := body["folderUid"].(string)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.posted[uid] = append(f.posted[uid], body)
	if _, ok := f.folders[folder]; !ok {
		f.message(w, http.StatusBadRequest, "folder not found", "")
		return
	}
	version, _ := model["version"].(float64)
	if d, ok := f.dashboards[uid]; ok && !overwrite && int64(version) != d.Version {
		f.message(w, http.StatusPreconditionFailed, "The dashboard has been changed by someone else", "version-mismatch")
		return
	}
	for other, d := range f.dashboards {
		if other != uid && d.FolderUID == folder && d.Model["title"] == title {
			if !overwrite {
				f.message(w, http.StatusPreconditionFailed, "A dashboard with the same name in the folder already exists", "name-exists")
				return
			}
			delete(f.dashboards, other) // Grafana's legacy store takes the other one over
		}
	}
	d, ok := f.dashboards[uid]
	if !ok {
		d = &fakeDashboard{Model: map[string]any{"id": float64(f.id())}}
		f.dashboards[uid] = d
	}
	id := d.Model["id"]
	d.Version++
	d.Model, d.FolderUID = model, folder
	d.Model["id"], d.Model["version"] = id, float64(d.Version)
	f.json(w, http.StatusOK, map[string]any{"id": id, "uid": uid, "url": "/d/" + uid + "/slug", "status": "success",
		"version": d.Version, "slug": "slug", "folderUid": folder})
}

// writes returns the POST and PUT requests made since the last reset.
func (f *fakeGrafana) writes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		if strings.HasPrefix(c, "POST ") || strings.HasPrefix(c, "PUT ") {
			out = append(out, c)
		}
	}
	return out
}

func (f *fakeGrafana) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls, f.posted = nil, map[string][]map[string]any{}
}

func (f *fakeGrafana) setFail(fail func(r *http.Request, body map[string]any) *reply) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = fail
}

// Secrets of the tests; none may reach an error or a log.
const (
	passwordEnv = "OPSMETRICS_TEST_CLICKHOUSE_PASSWORD"
	chPassword  = "ch-Secret-7781"
)

func testDataSources() dashboards.DataSources {
	return dashboards.DataSources{Host: "clickhouse", Port: 9000, Database: "opsmetrics", User: "grafana",
		PasswordEnv: passwordEnv, PrometheusURL: "http://prometheus:9090"}
}

// provisioner returns a Provisioner for fake authenticating with its
// credentials, and the buffer its logs (every level) go to.
func provisioner(t *testing.T, f *fakeGrafana) (*dashboards.Provisioner, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	g := dashboards.Grafana{URL: f.URL(), Token: f.token, User: f.user, Password: f.password}
	if f.org != "" {
		fmt.Sscan(f.org, &g.OrgID)
	}
	p, err := dashboards.NewProvisioner(g, testDataSources(), dashboards.Options{},
		slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	return p, &logs
}

// outcomes returns "kind uid outcome" for every object of res.
func outcomes(res *dashboards.Result) []string {
	if res == nil {
		return nil
	}
	var out []string
	for _, o := range res.Objects {
		out = append(out, fmt.Sprintf("%s %s %s", o.Kind, o.UID, o.Outcome))
	}
	return out
}

// expected returns "kind uid outcome" for the folder, the data sources
// and every dashboard, with the outcome the map gives (default def).
func expected(t *testing.T, def dashboards.Outcome, by map[string]dashboards.Outcome) []string {
	t.Helper()
	o := func(uid string) dashboards.Outcome {
		if x, ok := by[uid]; ok {
			return x
		}
		return def
	}
	out := []string{
		fmt.Sprintf("folder %s %s", dashboards.FolderUID, o(dashboards.FolderUID)),
		fmt.Sprintf("datasource %s %s", dashboards.ClickHouseUID, o(dashboards.ClickHouseUID)),
		fmt.Sprintf("datasource %s %s", dashboards.PrometheusUID, o(dashboards.PrometheusUID)),
	}
	for _, uid := range boardUIDs(t) {
		out = append(out, fmt.Sprintf("dashboard %s %s", uid, o(uid)))
	}
	return out
}

func boardUIDs(t *testing.T) []string {
	t.Helper()
	boards, err := dashboards.All(dashboards.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range boards {
		out = append(out, *d.Uid)
	}
	return out
}

// jsonValue is v as encoding/json decodes its encoding.
func jsonValue(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// noSecrets fails the test when a secret appears in any of texts.
func noSecrets(t *testing.T, f *fakeGrafana, texts map[string]string) {
	t.Helper()
	for name, text := range texts {
		secrets := []string{f.token, f.password, chPassword}
		if f.password != "" {
			secrets = append(secrets, base64.StdEncoding.EncodeToString([]byte(f.user+":"+f.password)))
		}
		for _, s := range secrets {
			if s != "" && strings.Contains(text, s) {
				t.Errorf("%s holds a secret:\n%s", name, text)
			}
		}
	}
}

func TestProvisionCreatesThenChangesNothing(t *testing.T) {
	t.Setenv(passwordEnv, chPassword)
	ctx := context.Background()
	f := newFakeGrafana(t)
	p, logs := provisioner(t, f)

	res, err := p.Provision(ctx)
	if err != nil {
		t.Fatalf("first run: %v", err)
	}
	if got, want := outcomes(res), expected(t, dashboards.Created, nil); !slices.Equal(got, want) {
		t.Errorf("first run:\n got %q\nwant %q", got, want)
	}
	wantCalls := []string{"GET /api/folders/opsmetrics", "POST /api/folders",
		"GET /api/datasources/uid/opsmetrics-clickhouse", "POST /api/datasources",
		"GET /api/datasources/uid/opsmetrics-prometheus", "POST /api/datasources"}
	for _, uid := range boardUIDs(t) {
		wantCalls = append(wantCalls, "GET /api/dashboards/uid/"+uid, "POST /api/dashboards/db")
	}
	if !slices.Equal(f.calls, wantCalls) {
		t.Errorf("first run calls:\n got %q\nwant %q", f.calls, wantCalls)
	}

	if fo := f.folders[dashboards.FolderUID]; fo == nil || fo.Title != "opsmetrics" {
		t.Errorf("folder: %+v, want title opsmetrics", fo)
	}
	ch := f.dataSources[dashboards.ClickHouseUID]
	wantJSON := map[string]any{"host": "clickhouse", "port": float64(9000), "protocol": "native", "secure": false,
		"username": "grafana", "defaultDatabase": "opsmetrics"}
	if ch == nil || ch.Fields["type"] != "grafana-clickhouse-datasource" || ch.Fields["access"] != "proxy" ||
		!reflect.DeepEqual(ch.Fields["jsonData"], wantJSON) {
		t.Errorf("clickhouse data source: %+v\nwant type grafana-clickhouse-datasource, access proxy, jsonData %v", ch, wantJSON)
	} else if ch.Secure["password"] != chPassword {
		t.Errorf("clickhouse secureJsonData.password is not the value of %s", passwordEnv)
	}
	if prom := f.dataSources[dashboards.PrometheusUID]; prom == nil || prom.Fields["type"] != "prometheus" ||
		prom.Fields["url"] != "http://prometheus:9090" || prom.Fields["access"] != "proxy" {
		t.Errorf("prometheus data source: %+v", prom)
	}
	checkSameAsTree(t, f)

	boards, err := dashboards.All(dashboards.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range boards {
		bodies := f.posted[*d.Uid]
		if len(bodies) != 1 {
			t.Errorf("dashboard %s: posted %d times, want 1", *d.Uid, len(bodies))
			continue
		}
		body := bodies[0]
		if got, want := body["dashboard"], jsonValue(t, d); !reflect.DeepEqual(got, want) {
			gb, _ := json.Marshal(got)
			wb, _ := json.Marshal(want)
			i := 0
			for i < len(gb) && i < len(wb) && gb[i] == wb[i] {
				i++
			}
			t.Errorf("dashboard %s: posted model is not All()'s JSON: at %d\n got %s\nwant %s", *d.Uid, i, gb[max(0, i-200):min(len(gb), i+100)], wb[max(0, i-200):min(len(wb), i+100)])
		}
		if body["folderUid"] != dashboards.FolderUID || body["message"] == "" || body["overwrite"] == true {
			t.Errorf("dashboard %s: folderUid %v message %v overwrite %v; want opsmetrics, a message, no overwrite on create",
				*d.Uid, body["folderUid"], body["message"], body["overwrite"])
		}
		if got := f.dashboards[*d.Uid]; got == nil || got.FolderUID != dashboards.FolderUID || got.Version != 1 {
			t.Errorf("dashboard %s stored as %+v", *d.Uid, got)
		}
	}

	f.reset()
	res, err = p.Provision(ctx)
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	if got, want := outcomes(res), expected(t, dashboards.Unchanged, nil); !slices.Equal(got, want) {
		t.Errorf("second run:\n got %q\nwant %q", got, want)
	}
	if w := f.writes(); len(w) != 0 {
		t.Errorf("second run wrote %q, want no POST or PUT", w)
	}
	for _, d := range f.dashboards {
		if d.Version != 1 {
			t.Errorf("dashboard %v: version %d after two runs, want 1", d.Model["uid"], d.Version)
		}
	}
	noSecrets(t, f, map[string]string{"log": logs.String()})
}

// checkSameAsTree checks that the data sources in f are those WriteTree
// writes for file provisioning, but for the password, which the API gets
// as a value where the file names the variable.
func checkSameAsTree(t *testing.T, f *fakeGrafana) {
	t.Helper()
	dir := t.TempDir()
	if _, err := dashboards.WriteTree(dir, "/dashboards", testDataSources(), dashboards.Options{}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "provisioning/datasources/opsmetrics.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var tree struct {
		DataSources []map[string]any `yaml:"datasources"`
	}
	if err := yaml.Unmarshal(b, &tree); err != nil {
		t.Fatal(err)
	}
	for _, want := range tree.DataSources {
		uid := want["uid"].(string)
		got := f.dataSources[uid]
		if got == nil {
			t.Errorf("data source %s of the tree was not provisioned", uid)
			continue
		}
		for _, k := range []string{"name", "type", "access", "url", "jsonData"} {
			if w, g := jsonValue(t, want[k]), jsonValue(t, got.Fields[k]); !reflect.DeepEqual(w, g) {
				t.Errorf("data source %s %s: API %v, tree %v", uid, k, g, w)
			}
		}
		if s, ok := want["secureJsonData"].(map[string]any); ok && s["password"] != "${"+passwordEnv+"}" {
			t.Errorf("tree password %v", s["password"])
		}
	}
}

func TestProvisionRepairsWhatChangedInGrafana(t *testing.T) {
	t.Setenv(passwordEnv, chPassword)
	ctx := context.Background()
	f := newFakeGrafana(t)
	p, _ := provisioner(t, f)
	if _, err := p.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	uids := boardUIDs(t)
	edited, moved := uids[0], uids[len(uids)-1]
	// Someone renames the folder, edits a dashboard, moves another out of
	// the folder and changes the ClickHouse port; the plugin adds a key.
	f.mu.Lock()
	f.folders[dashboards.FolderUID].Title = "ops stuff"
	d := f.dashboards[edited]
	d.Model["title"], d.Version = "edited in Grafana", d.Version+1
	d.Model["version"] = float64(d.Version)
	f.folders["general-ish"] = &fakeFolder{ID: 99, Title: "elsewhere", Version: 1}
	f.dashboards[moved].FolderUID = "general-ish"
	ch := f.dataSources[dashboards.ClickHouseUID]
	ch.Fields["jsonData"].(map[string]any)["port"] = float64(9440)
	ch.Fields["jsonData"].(map[string]any)["logs"] = map[string]any{"defaultTable": "otel_logs"}
	f.mu.Unlock()
	f.reset()

	res, err := p.Provision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := expected(t, dashboards.Unchanged, map[string]dashboards.Outcome{dashboards.FolderUID: dashboards.Updated,
		dashboards.ClickHouseUID: dashboards.Updated, edited: dashboards.Updated, moved: dashboards.Updated})
	if got := outcomes(res); !slices.Equal(got, want) {
		t.Errorf("after edits:\n got %q\nwant %q", got, want)
	}
	if got := f.folders[dashboards.FolderUID].Title; got != "opsmetrics" {
		t.Errorf("folder title %q, want it restored", got)
	}
	boards, _ := dashboards.All(dashboards.Options{})
	for _, b := range boards {
		d := f.dashboards[*b.Uid]
		model := jsonValue(t, d.Model).(map[string]any)
		delete(model, "id")
		delete(model, "version")
		if !reflect.DeepEqual(model, jsonValue(t, b)) || d.FolderUID != dashboards.FolderUID {
			t.Errorf("dashboard %s not restored (folder %s)", *b.Uid, d.FolderUID)
		}
	}
	for _, uid := range []string{edited, moved} {
		if bodies := f.posted[uid]; len(bodies) != 1 || bodies[0]["overwrite"] != true {
			t.Errorf("dashboard %s: update bodies %v, want one with overwrite true", uid, len(bodies))
		}
	}
	jd := f.dataSources[dashboards.ClickHouseUID].Fields["jsonData"].(map[string]any)
	if jd["port"] != float64(9000) || jd["logs"] == nil {
		t.Errorf("clickhouse jsonData %v: want port 9000 again and the plugin's key kept", jd)
	}
	if f.dataSources[dashboards.ClickHouseUID].Secure["password"] != chPassword {
		t.Error("clickhouse password lost by the update")
	}

	f.reset()
	res, err = p.Provision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := outcomes(res), expected(t, dashboards.Unchanged, nil); !slices.Equal(got, want) || len(f.writes()) != 0 {
		t.Errorf("run after repair: %q, writes %q", got, f.writes())
	}
}

func TestProvisionNeverTouchesForeignUIDs(t *testing.T) {
	t.Setenv(passwordEnv, chPassword)
	ctx := context.Background()
	f := newFakeGrafana(t)
	boards, err := dashboards.All(dashboards.Options{})
	if err != nil {
		t.Fatal(err)
	}
	clash := boards[0]
	// Another team's dashboards in our folder, one with the title of one of
	// ours, and their data source.
	f.folders[dashboards.FolderUID] = &fakeFolder{ID: 1, Title: "opsmetrics", Version: 1}
	f.dashboards["team-latency"] = &fakeDashboard{FolderUID: dashboards.FolderUID, Version: 3,
		Model: map[string]any{"id": float64(2), "uid": "team-latency", "title": "Team latency", "version": float64(3)}}
	f.dashboards["team-copy"] = &fakeDashboard{FolderUID: dashboards.FolderUID, Version: 1,
		Model: map[string]any{"id": float64(3), "uid": "team-copy", "title": *clash.Title, "version": float64(1)}}
	f.dataSources["team-prom"] = &fakeDataSource{ID: 4, Version: 1, Secure: map[string]string{},
		Fields: map[string]any{"name": "Team Prometheus", "type": "prometheus", "access": "proxy", "url": "http://team:9090"}}
	f.nextID = 10
	for uid := range map[string]bool{"team-latency": true, "team-copy": true, "team-prom": true} {
		f.foreign[uid] = true
	}
	before := jsonValue(t, map[string]any{"d1": f.dashboards["team-latency"], "d2": f.dashboards["team-copy"],
		"ds": f.dataSources["team-prom"]})
	p, _ := provisioner(t, f)

	res, err := p.Provision(ctx)
	wantMsg := fmt.Sprintf("grafana: dashboard %s: another dashboard in folder opsmetrics has the same title; "+
		"rename or move it (opsmetrics overwrites only the UIDs it owns)", *clash.Uid)
	if err == nil || err.Error() != wantMsg {
		t.Errorf("error %v\nwant %s", err, wantMsg)
	}
	want := expected(t, dashboards.Created, map[string]dashboards.Outcome{dashboards.FolderUID: dashboards.Unchanged,
		*clash.Uid: dashboards.Failed})
	if got := outcomes(res); !slices.Equal(got, want) {
		t.Errorf("outcomes:\n got %q\nwant %q", got, want)
	}
	after := jsonValue(t, map[string]any{"d1": f.dashboards["team-latency"], "d2": f.dashboards["team-copy"],
		"ds": f.dataSources["team-prom"]})
	if !reflect.DeepEqual(before, after) {
		t.Errorf("foreign objects changed:\nbefore %v\nafter  %v", before, after)
	}
}

func TestProvisionErrors(t *testing.T) {
	t.Setenv(passwordEnv, chPassword)
	uids := boardUIDs(t)
	last := uids[len(uids)-1]
	// on answers rep to the requests whose "METHOD path" is what, and, when
	// uid is set, whose dashboard body has that uid.
	on := func(what, uid string, rep reply) func(*http.Request, map[string]any) *reply {
		return func(r *http.Request, body map[string]any) *reply {
			if r.Method+" "+r.URL.Path != what && what != "*" {
				return nil
			}
			if d, _ := body["dashboard"].(map[string]any); uid != "" && (d == nil || d["uid"] != uid) {
				return nil
			}
			return &rep
		}
	}
	// applied lists the uids of the objects of the first run but the failed.
	all := append([]string{dashboards.FolderUID, dashboards.ClickHouseUID, dashboards.PrometheusUID}, uids...)
	allBut := func(failed ...string) []string {
		var out []string
		for _, u := range all {
			if !slices.Contains(failed, u) {
				out = append(out, u)
			}
		}
		return out
	}
	for _, tc := range []struct {
		name        string
		fail        func(*http.Request, map[string]any) *reply
		wantErr     []string // the error's lines, each with %s for the fake's URL
		wantApplied []string
		wantFailed  []string
	}{
		{"401 stops the run", on("*", "", reply{status: 401, body: `{"message":"Unauthorized"}`}),
			[]string{"grafana: authentication failed (check the token or user/password)"},
			nil, []string{dashboards.FolderUID}},
		{"403 on the folder stops the run", on("POST /api/folders", "", reply{status: 403, body: `{"message":"Access denied"}`}),
			[]string{"grafana: the token lacks permission to create folder opsmetrics (needs Editor/Admin on folder opsmetrics)"},
			nil, []string{dashboards.FolderUID}},
		{"403 on a data source", on("POST /api/datasources", "", reply{status: 403, body: `{"message":"Permission denied"}`}),
			[]string{
				"grafana: the token lacks permission to add data source opsmetrics-clickhouse (needs the Admin role in the organisation)",
				"grafana: the token lacks permission to add data source opsmetrics-prometheus (needs the Admin role in the organisation)"},
			allBut(dashboards.ClickHouseUID, dashboards.PrometheusUID), []string{dashboards.ClickHouseUID, dashboards.PrometheusUID}},
		{"404 on a write", on("POST /api/dashboards/db", last, reply{status: 404, contentType: "text/plain", body: "404 page not found"}),
			[]string{"grafana: save dashboard " + last + ": POST %s/api/dashboards/db not found (is the URL right?)"},
			allBut(last), []string{last}},
		{"412 version mismatch", on("POST /api/dashboards/db", last, reply{status: 412,
			body: `{"message":"The dashboard has been changed by someone else","status":"version-mismatch"}`}),
			[]string{"grafana: dashboard " + last + " changed in Grafana since it was read (version mismatch); run again to overwrite it"},
			allBut(last), []string{last}},
		{"500 with Grafana's JSON", on("GET /api/datasources/uid/opsmetrics-prometheus", "", reply{status: 500,
			body: `{"message":"Failed to query datasource","error":"database is locked"}`}),
			[]string{"grafana: server error 500 on read data source opsmetrics-prometheus " +
				"(GET %s/api/datasources/uid/opsmetrics-prometheus): Failed to query datasource: database is locked"},
			allBut(dashboards.PrometheusUID), []string{dashboards.PrometheusUID}},
		{"500 with a body the client cannot decode", on("POST /api/dashboards/db", last, reply{status: 500,
			contentType: "text/plain", body: "panic: runtime error\n  goroutine 7"}),
			[]string{"grafana: server error 500 on save dashboard " + last + " (POST %s/api/dashboards/db): panic: runtime error goroutine 7"},
			allBut(last), []string{last}},
		{"502 from a proxy stops at the folder", on("GET /api/folders/opsmetrics", "", reply{status: 502,
			contentType: "text/html", body: "<html><body>502 Bad Gateway</body></html>"}),
			[]string{"grafana: server error 502 on read folder opsmetrics (GET %s/api/folders/opsmetrics): <html><body>502 Bad Gateway</body></html>"},
			nil, []string{dashboards.FolderUID}},
		{"409 name taken", on("POST /api/datasources", "", reply{status: 409,
			body: `{"message":"data source with the same name already exists"}`}),
			[]string{
				"grafana: add data source opsmetrics-clickhouse: 409 Conflict: data source with the same name already exists",
				"grafana: add data source opsmetrics-prometheus: 409 Conflict: data source with the same name already exists"},
			allBut(dashboards.ClickHouseUID, dashboards.PrometheusUID), []string{dashboards.ClickHouseUID, dashboards.PrometheusUID}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeGrafana(t)
			f.setFail(tc.fail)
			p, logs := provisioner(t, f)
			res, err := p.Provision(context.Background())
			var want []string
			for _, l := range tc.wantErr {
				want = append(want, strings.ReplaceAll(l, "%s", f.URL()))
			}
			if err == nil || err.Error() != strings.Join(want, "\n") {
				t.Errorf("error:\n%v\nwant:\n%s", err, strings.Join(want, "\n"))
			}
			if res == nil {
				t.Fatal("no result")
			}
			var applied, failed []string
			for _, o := range res.Applied() {
				applied = append(applied, o.UID)
			}
			for _, o := range res.Failed() {
				failed = append(failed, o.UID)
				if o.Err == nil {
					t.Errorf("failed %s has no error", o.UID)
				}
			}
			if !slices.Equal(applied, tc.wantApplied) || !slices.Equal(failed, tc.wantFailed) {
				t.Errorf("applied %q failed %q\nwant applied %q failed %q", applied, failed, tc.wantApplied, tc.wantFailed)
			}
			noSecrets(t, f, map[string]string{"error": fmt.Sprint(err), "log": logs.String()})
		})
	}
}

func TestProvisionPartialFailure(t *testing.T) {
	t.Setenv(passwordEnv, chPassword)
	ctx := context.Background()
	f := newFakeGrafana(t)
	uids := boardUIDs(t)
	broken := uids[len(uids)/2]
	f.setFail(func(r *http.Request, body map[string]any) *reply {
		if d, _ := body["dashboard"].(map[string]any); r.URL.Path == "/api/dashboards/db" && d["uid"] == broken {
			return &reply{status: 500, body: `{"message":"Internal Server Error"}`}
		}
		return nil
	})
	p, _ := provisioner(t, f)
	res, err := p.Provision(ctx)
	if err == nil || !strings.Contains(err.Error(), "save dashboard "+broken+" ") {
		t.Fatalf("error %v, want it to name %s", err, broken)
	}
	for _, uid := range uids {
		if uid != broken && strings.Contains(err.Error(), uid) {
			t.Errorf("error names %s, which was applied: %v", uid, err)
		}
	}
	want := expected(t, dashboards.Created, map[string]dashboards.Outcome{broken: dashboards.Failed})
	if got := outcomes(res); !slices.Equal(got, want) {
		t.Errorf("outcomes:\n got %q\nwant %q", got, want)
	}
	for _, uid := range uids {
		if _, stored := f.dashboards[uid]; stored != (uid != broken) {
			t.Errorf("dashboard %s stored %v", uid, stored)
		}
	}

	f.setFail(nil)
	res, err = p.Provision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want = expected(t, dashboards.Unchanged, map[string]dashboards.Outcome{broken: dashboards.Created})
	if got := outcomes(res); !slices.Equal(got, want) {
		t.Errorf("run after the fix:\n got %q\nwant %q", got, want)
	}
}

// TestProvisionKeepsSecretsOut: a server that quotes the request it
// failed (headers and body) must not make the token or a password reach
// an error or a log, nor the client library's debug dump (DEBUG=1).
func TestProvisionKeepsSecretsOut(t *testing.T) {
	t.Setenv(passwordEnv, chPassword)
	t.Setenv("DEBUG", "1")
	t.Setenv("SWAGGER_DEBUG", "1")
	for _, basic := range []bool{false, true} {
		t.Run(fmt.Sprintf("basic=%v", basic), func(t *testing.T) {
			f := newFakeGrafana(t)
			if basic {
				f.token, f.user, f.password = "", "admin", "admin-Pw-5521"
			}
			f.setFail(func(r *http.Request, body map[string]any) *reply {
				if r.Method == http.MethodGet || r.URL.Path == "/api/folders" {
					return nil
				}
				b, _ := json.Marshal(body)
				quoted, _ := json.Marshal(fmt.Sprintf("cannot handle %s with Authorization %s", b, r.Header.Get("Authorization")))
				return &reply{status: 500, body: `{"message":` + string(quoted) + `}`}
			})
			p, logs := provisioner(t, f)
			stderr := captureStderr(t, func() {
				res, err := p.Provision(context.Background())
				if err == nil {
					t.Fatal("want an error")
				}
				texts := map[string]string{"error": err.Error(), "log": logs.String()}
				for _, o := range res.Objects {
					texts["object "+o.UID] = fmt.Sprint(o.Err)
				}
				if !strings.Contains(err.Error(), "[redacted]") {
					t.Errorf("the server's quote was not kept, redacted: %v", err)
				}
				noSecrets(t, f, texts)
			})
			noSecrets(t, f, map[string]string{"stderr": stderr})
			// The fake did get the secrets: the test checks something.
			f.mu.Lock()
			defer f.mu.Unlock()
			if len(f.calls) < 2 {
				t.Errorf("calls %q", f.calls)
			}
		})
	}
}

// captureStderr returns what run wrote to os.Stderr.
func captureStderr(t *testing.T, run func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stderr
	os.Stderr = w
	done := make(chan []byte)
	go func() { b, _ := io.ReadAll(r); done <- b }()
	defer func() {
		os.Stderr = old
	}()
	run()
	os.Stderr = old
	w.Close()
	return string(<-done)
}

func TestProvisionBasicAuthOrgAndSubPath(t *testing.T) {
	t.Setenv(passwordEnv, chPassword)
	f := newFakeGrafana(t)
	f.token, f.user, f.password, f.org, f.prefix = "", "admin", "admin-Pw-5521", "2", "/grafana"
	p, _ := provisioner(t, f)
	res, err := p.Provision(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := outcomes(res), expected(t, dashboards.Created, nil); !slices.Equal(got, want) {
		t.Errorf("outcomes:\n got %q\nwant %q", got, want)
	}
}

func TestProvisionWithoutPassword(t *testing.T) {
	t.Setenv(passwordEnv, "")
	f := newFakeGrafana(t)
	p, logs := provisioner(t, f)
	if _, err := p.Provision(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := f.dataSources[dashboards.ClickHouseUID].Secure; len(s) != 0 {
		t.Errorf("secure fields %v, want none", s)
	}
	if !strings.Contains(logs.String(), passwordEnv) {
		t.Errorf("no warning naming %s:\n%s", passwordEnv, logs)
	}
}

func TestNewProvisionerValidates(t *testing.T) {
	ds := testDataSources()
	for _, tc := range []struct {
		name string
		g    dashboards.Grafana
		ds   dashboards.DataSources
		want string
	}{
		{"no scheme", dashboards.Grafana{URL: "localhost:3000", Token: "t0k3n-xyz"}, ds, "grafana: url: want http://host"},
		{"ftp", dashboards.Grafana{URL: "ftp://grafana", Token: "t0k3n-xyz"}, ds, "grafana: url: want http://host"},
		{"no host", dashboards.Grafana{URL: "http://", Token: "t0k3n-xyz"}, ds, "grafana: url: want http://host"},
		{"credentials in the URL", dashboards.Grafana{URL: "http://admin:hunter2-pw@grafana:3000", Token: "t0k3n-xyz"}, ds,
			"grafana: url: must not hold credentials"},
		{"query", dashboards.Grafana{URL: "http://grafana:3000/?orgId=1", Token: "t0k3n-xyz"}, ds, "grafana: url: must have no query"},
		{"no auth", dashboards.Grafana{URL: "http://grafana:3000"}, ds, "grafana: auth: set a token, or both a user and a password"},
		{"user without password", dashboards.Grafana{URL: "http://grafana:3000", User: "admin"}, ds, "grafana: auth: set a token, or both"},
		{"token and user", dashboards.Grafana{URL: "http://grafana:3000", Token: "t0k3n-xyz", User: "admin", Password: "hunter2-pw"}, ds,
			"grafana: auth: set a token or a user and password, not both"},
		{"org", dashboards.Grafana{URL: "http://grafana:3000", Token: "t0k3n-xyz", OrgID: -1}, ds, "grafana: org_id: must be >= 0, got -1"},
		{"no clickhouse host", dashboards.Grafana{URL: "http://grafana:3000", Token: "t0k3n-xyz"}, dashboards.DataSources{Port: 9000},
			"want a host and a port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := dashboards.NewProvisioner(tc.g, tc.ds, dashboards.Options{}, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewProvisioner(%v): %v, want %q", tc.g, err, tc.want)
			}
			for _, s := range []string{"t0k3n-xyz", "hunter2-pw"} {
				if strings.Contains(err.Error(), s) || strings.Contains(tc.g.String(), s) {
					t.Errorf("a secret reached the error or String: %v / %v", err, tc.g)
				}
			}
		})
	}
}
