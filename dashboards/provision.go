package dashboards

// Provisioning through Grafana's HTTP API uses
// github.com/grafana/grafana-openapi-client-go, which Grafana generates from
// its OpenAPI spec. It is the maintained successor of
// github.com/grafana/grafana-api-golang-client, archived since January 2024.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/go-openapi/runtime"
	httptransport "github.com/go-openapi/runtime/client"
	"github.com/go-openapi/strfmt"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	gapi "github.com/grafana/grafana-openapi-client-go/client"
	"github.com/grafana/grafana-openapi-client-go/models"
)

// Grafana says how to reach Grafana's HTTP API and authenticate to it.
type Grafana struct {
	// URL is Grafana's root URL: http or https, a host, and the sub-path
	// Grafana is served under, if any (https://example.com/grafana).
	URL string
	// Token is a service account token, sent as a bearer token.
	Token string
	// User and Password authenticate with basic auth when there is no token.
	User, Password string
	// OrgID, when not zero, selects the organisation (X-Grafana-Org-Id).
	// A service account token already belongs to one organisation.
	OrgID int64
}

// Validate checks the URL and that exactly one way to authenticate is set.
// Its errors never quote a secret.
func (g Grafana) Validate() error {
	var errs []error
	u, err := url.Parse(g.URL)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "":
		errs = append(errs, fmt.Errorf("grafana: url: want http://host[:port][/path] or https://..., got %q", redactURL(g.URL)))
	case u.User != nil:
		errs = append(errs, fmt.Errorf("grafana: url: must not hold credentials (use a token, or a user and password), got %q", u.Redacted()))
	case u.RawQuery != "" || u.Fragment != "":
		errs = append(errs, fmt.Errorf("grafana: url: must have no query or fragment, got %q", u.Redacted()))
	}
	switch {
	case g.Token != "" && (g.User != "" || g.Password != ""):
		errs = append(errs, errors.New("grafana: auth: set a token or a user and password, not both"))
	case g.Token == "" && (g.User == "" || g.Password == ""):
		errs = append(errs, errors.New("grafana: auth: set a token, or both a user and a password"))
	}
	if g.OrgID < 0 {
		errs = append(errs, fmt.Errorf("grafana: org_id: must be >= 0, got %d", g.OrgID))
	}
	return errors.Join(errs...)
}

// String describes g without its secrets, so that printing it is safe.
func (g Grafana) String() string {
	auth := "token"
	if g.Token == "" {
		auth = "user " + strconv.Quote(g.User)
	}
	return fmt.Sprintf("grafana %s (%s, org %d)", redactURL(g.URL), auth, g.OrgID)
}

// LogValue logs g without its secrets.
func (g Grafana) LogValue() slog.Value { return slog.StringValue(g.String()) }

func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return "<unparseable>"
}

// Kind is the kind of a provisioned object.
type Kind string

// Kinds of provisioned objects.
const (
	KindFolder     Kind = "folder"
	KindDataSource Kind = "datasource"
	KindDashboard  Kind = "dashboard"
)

// Outcome is what provisioning did to one object.
type Outcome string

// Outcomes of provisioning one object.
const (
	Created   Outcome = "created"
	Updated   Outcome = "updated"
	Unchanged Outcome = "unchanged"
	Failed    Outcome = "failed"
)

// Object is one object provisioning applied, or failed to apply.
type Object struct {
	Kind    Kind
	UID     string
	Outcome Outcome
	// Err says why the object failed, when Outcome is Failed.
	Err error
}

// Result lists the objects of one provisioning run in the order they were
// applied: the folder, the data sources, then the dashboards. An object
// missing from it was not attempted, because an earlier failure (the
// folder, authentication, a cancelled context) stopped the run.
type Result struct {
	Objects []Object
}

// Applied returns the objects that were created, updated or found
// unchanged.
func (r *Result) Applied() []Object {
	var out []Object
	for _, o := range r.Objects {
		if o.Outcome != Failed {
			out = append(out, o)
		}
	}
	return out
}

// Failed returns the objects that could not be applied.
func (r *Result) Failed() []Object {
	var out []Object
	for _, o := range r.Objects {
		if o.Outcome == Failed {
			out = append(out, o)
		}
	}
	return out
}

// folderTitle is the title of the folder FolderUID.
const folderTitle = "opsmetrics"

// saveMessage is the message Grafana keeps in a dashboard's version history.
const saveMessage = "provisioned by opsmetrics dashboards provision"

// ownedPrefix starts every dashboard and data source UID opsmetrics owns
// (the UID constants of this package); the folder's is FolderUID.
// Provisioning writes only the objects this package builds, and checks
// that each one's UID is owned before it lets Grafana overwrite it.
const ownedPrefix = FolderUID + "-"

// requestTimeout bounds one HTTP request to Grafana.
const requestTimeout = 30 * time.Second

// Provisioner creates or updates, through Grafana's HTTP API, the opsmetrics
// folder, the data sources and every dashboard. It reads each object first
// and writes only what differs, so that running it again changes nothing.
// It touches only the UIDs opsmetrics owns.
type Provisioner struct {
	g   Grafana
	ds  DataSources
	o   Options
	api *gapi.GrafanaHTTPAPI
	log *slog.Logger
}

// NewProvisioner returns a Provisioner writing to Grafana g the data
// sources ds configures and the dashboards built with o. It sends no
// request.
func NewProvisioner(g Grafana, ds DataSources, o Options, log *slog.Logger) (*Provisioner, error) {
	if err := g.Validate(); err != nil {
		return nil, err
	}
	if ds.Host == "" || ds.Port <= 0 {
		return nil, fmt.Errorf("dashboards: clickhouse data source: want a host and a port > 0, got %q and %d", ds.Host, ds.Port)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	u, _ := url.Parse(g.URL) // validated above
	// The runtime is built here rather than by gapi.NewHTTPClientWithConfig,
	// which sets the TLS configuration of http.DefaultTransport, a global.
	rt := httptransport.NewWithClient(u.Host, strings.TrimSuffix(u.Path, "/")+gapi.DefaultBasePath, []string{u.Scheme},
		&http.Client{Transport: recorder{next: http.DefaultTransport}, Timeout: requestTimeout})
	var auth []runtime.ClientAuthInfoWriter
	if g.Token != "" {
		auth = append(auth, httptransport.BearerToken(g.Token))
	} else {
		auth = append(auth, httptransport.BasicAuth(g.User, g.Password))
	}
	if g.OrgID != 0 {
		org := strconv.FormatInt(g.OrgID, 10)
		auth = append(auth, runtime.ClientAuthInfoWriterFunc(func(r runtime.ClientRequest, _ strfmt.Registry) error {
			return r.SetHeaderParam(gapi.OrgIDHeader, org)
		}))
	}
	rt.DefaultAuthentication = httptransport.Compose(auth...)
	// The runtime turns its debug dumps on when DEBUG or SWAGGER_DEBUG is
	// set; they print the Authorization header and the password to stderr.
	rt.Debug = false
	// Decode numbers as float64, as encoding/json does, rather than the
	// runtime's json.Number, so that stored and wanted JSON compare equal.
	rt.Consumers[runtime.JSONMime] = runtime.ConsumerFunc(func(r io.Reader, v any) error {
		return json.NewDecoder(r).Decode(v)
	})
	cfg := &gapi.TransportConfig{Host: u.Host, BasePath: rt.BasePath, Schemes: []string{u.Scheme}, OrgID: g.OrgID}
	return &Provisioner{g: g, ds: ds, o: o, api: gapi.New(rt, cfg, nil), log: log}, nil
}

// Provision ensures the folder, the data sources and every dashboard, in
// that order, and reports what it did to each. It goes on past a failed
// data source or dashboard, and returns the failures joined: the Result
// still names the objects that were applied. A failed folder, a failed
// authentication or a cancelled ctx stops the run.
func (p *Provisioner) Provision(ctx context.Context) (*Result, error) {
	boards, err := All(p.o)
	if err != nil {
		return nil, err
	}
	res := &Result{}
	var errs []error
	// apply records one object's outcome and says whether to stop.
	apply := func(kind Kind, uid string, f func() (Outcome, error)) bool {
		out, err := f()
		if err != nil {
			res.Objects = append(res.Objects, Object{Kind: kind, UID: uid, Outcome: Failed, Err: err})
			errs = append(errs, err)
			return kind == KindFolder || isStatus(err, http.StatusUnauthorized) || ctx.Err() != nil
		}
		res.Objects = append(res.Objects, Object{Kind: kind, UID: uid, Outcome: out})
		p.log.Debug("grafana object provisioned", "kind", kind, "uid", uid, "outcome", out)
		return false
	}
	if apply(KindFolder, FolderUID, func() (Outcome, error) { return p.folder(ctx) }) {
		return res, errors.Join(errs...)
	}
	for _, ds := range p.dataSources() {
		if apply(KindDataSource, ds.UID, func() (Outcome, error) { return p.dataSource(ctx, ds) }) {
			return res, errors.Join(errs...)
		}
	}
	for i, d := range boards {
		if d.Uid == nil {
			return res, errors.Join(append(errs, fmt.Errorf("dashboards: dashboard %d of All has no uid", i))...)
		}
		if apply(KindDashboard, *d.Uid, func() (Outcome, error) { return p.dashboard(ctx, d) }) {
			return res, errors.Join(errs...)
		}
	}
	return res, errors.Join(errs...)
}

// folder ensures the folder FolderUID exists with its title.
func (p *Provisioner) folder(ctx context.Context) (Outcome, error) {
	var cur *models.Folder
	err := p.call(ctx, folderRequest("read", "GET", "/folders/"+FolderUID), func(o clientOption) error {
		ok, err := p.api.Folders.GetFolderByUID(FolderUID, o)
		if err == nil {
			cur = ok.Payload
		}
		return err
	})
	switch {
	case isStatus(err, http.StatusNotFound):
		return outcome(Created, p.call(ctx, folderRequest("create", "POST", "/folders"), func(o clientOption) error {
			_, err := p.api.Folders.CreateFolder(&models.CreateFolderCommand{UID: FolderUID, Title: folderTitle}, o)
			return err
		}))
	case err != nil:
		return Failed, err
	case cur.Title == folderTitle:
		return Unchanged, nil
	}
	return outcome(Updated, p.call(ctx, folderRequest("update", "PUT", "/folders/"+FolderUID), func(o clientOption) error {
		_, err := p.api.Folders.UpdateFolder(FolderUID,
			&models.UpdateFolderCommand{Title: folderTitle, Version: cur.Version, Overwrite: true}, o)
		return err
	}))
}

// outcome is out, or Failed when err is not nil.
func outcome(out Outcome, err error) (Outcome, error) {
	if err != nil {
		return Failed, err
	}
	return out, nil
}

// dataSource is one data source as provisioning writes it: the fields are
// those tree.go writes, except that the password is the value of the
// environment variable, not a reference to it.
type dataSource struct {
	UID, Name, Type, URL string
	JSONData             map[string]any
	// Password is the ClickHouse password; empty means none is set, and
	// Grafana keeps the one it has.
	Password string
}

// dataSources returns the data sources to provision, with the ClickHouse
// password read from the environment now.
func (p *Provisioner) dataSources() []dataSource {
	ds := p.ds
	ch := dataSource{UID: ClickHouseUID, Name: "opsmetrics ClickHouse", Type: PluginID,
		JSONData: map[string]any{"host": ds.Host, "port": ds.Port, "protocol": "native", "secure": ds.Secure,
			"username": ds.User, "defaultDatabase": ds.Database}}
	if ds.PasswordEnv != "" {
		ch.Password = os.Getenv(ds.PasswordEnv)
		if ch.Password == "" {
			p.log.Warn("the ClickHouse password variable is empty or unset; the data source keeps the password Grafana has, if any",
				"env", ds.PasswordEnv)
		}
	}
	out := []dataSource{ch}
	if ds.PrometheusURL != "" {
		out = append(out, dataSource{UID: PrometheusUID, Name: "opsmetrics Prometheus", Type: "prometheus", URL: ds.PrometheusURL})
	}
	return out
}

// access is how every provisioned data source is reached: through
// Grafana's server.
const access = models.DsAccess("proxy")

// dataSource ensures one data source. It compares the fields provisioning
// sets, and keeps the ones it does not (jsonData keys a plugin added, basic
// auth, default): Grafana never returns a password, so only whether one is
// set is compared.
func (p *Provisioner) dataSource(ctx context.Context, ds dataSource) (Outcome, error) {
	var secure map[string]string
	if ds.Password != "" {
		secure = map[string]string{"password": ds.Password}
	}
	var jsonData models.JSON // none rather than null, as tree.go writes it
	if len(ds.JSONData) > 0 {
		jsonData = ds.JSONData
	}
	var cur *models.DataSource
	err := p.call(ctx, dataSourceRequest("read", ds.UID, "GET", "/datasources/uid/"+ds.UID), func(o clientOption) error {
		ok, err := p.api.Datasources.GetDataSourceByUID(ds.UID, o)
		if err == nil {
			cur = ok.Payload
		}
		return err
	})
	switch {
	case isStatus(err, http.StatusNotFound):
		return outcome(Created, p.call(ctx, dataSourceRequest("add", ds.UID, "POST", "/datasources"), func(o clientOption) error {
			_, err := p.api.Datasources.AddDataSource(&models.AddDataSourceCommand{UID: ds.UID, Name: ds.Name, Type: ds.Type,
				Access: access, URL: ds.URL, JSONData: jsonData, SecureJSONData: secure}, o)
			return err
		}))
	case err != nil:
		return Failed, err
	}
	// The update keeps the jsonData keys provisioning does not set.
	stored, err := normalize(cur.JSONData)
	if err != nil {
		return Failed, fmt.Errorf("data source %s: stored jsonData: %w", ds.UID, err)
	}
	want, err := normalize(ds.JSONData)
	if err != nil {
		return Failed, fmt.Errorf("data source %s: %w", ds.UID, err)
	}
	merged, ok := stored.(map[string]any)
	if !ok {
		merged = map[string]any{}
	}
	same := cur.Name == ds.Name && cur.Type == ds.Type && cur.Access == access && cur.URL == ds.URL &&
		(ds.Password == "" || cur.SecureJSONFields["password"])
	wantMap, _ := want.(map[string]any)
	for k, v := range wantMap {
		if !reflect.DeepEqual(merged[k], v) {
			same = false
			merged[k] = v
		}
	}
	if len(merged) > 0 {
		jsonData = merged
	}
	if same {
		return Unchanged, nil
	}
	if cur.ReadOnly {
		return Failed, fmt.Errorf("grafana: data source %s differs but is read-only: it was provisioned from files "+
			"(dashboards build); change it there, or remove it from the files to manage it through the API", ds.UID)
	}
	return outcome(Updated, p.call(ctx, dataSourceRequest("update", ds.UID, "PUT", "/datasources/uid/"+ds.UID), func(o clientOption) error {
		_, err := p.api.Datasources.UpdateDataSourceByUID(ds.UID, &models.UpdateDataSourceCommand{UID: ds.UID,
			Name: ds.Name, Type: ds.Type, Access: access, URL: ds.URL, JSONData: jsonData, SecureJSONData: secure,
			BasicAuth: cur.BasicAuth, BasicAuthUser: cur.BasicAuthUser, Database: cur.Database, User: cur.User,
			IsDefault: cur.IsDefault, WithCredentials: cur.WithCredentials, Version: cur.Version}, o)
		return err
	}))
}

// dashboard ensures one dashboard in the folder FolderUID. It compares the
// stored model with d ignoring the fields Grafana manages (id, version) and
// the meta but for the folder. A dashboard is created without overwrite,
// so that Grafana refuses, rather than replaces, another dashboard with the
// same title in the folder; one of ours that exists is saved with
// overwrite.
func (p *Provisioner) dashboard(ctx context.Context, d dashboard.Dashboard) (Outcome, error) {
	uid := *d.Uid
	if !strings.HasPrefix(uid, ownedPrefix) {
		return Failed, fmt.Errorf("dashboards: dashboard %q: its uid must start with %q, so that provisioning owns it", uid, ownedPrefix)
	}
	want, err := normalize(d)
	if err != nil {
		return Failed, fmt.Errorf("dashboard %s: %w", uid, err)
	}
	var cur *models.DashboardFullWithMeta
	err = p.call(ctx, dashboardRequest("read", uid, "GET", "/dashboards/uid/"+uid), func(o clientOption) error {
		ok, err := p.api.Dashboards.GetDashboardByUID(uid, o)
		if err == nil {
			cur = ok.Payload
		}
		return err
	})
	save := func(overwrite bool) error {
		return p.call(ctx, dashboardRequest("save", uid, "POST", "/dashboards/db"), func(o clientOption) error {
			_, err := p.api.Dashboards.PostDashboard(&models.SaveDashboardCommand{Dashboard: want, FolderUID: FolderUID,
				Message: saveMessage, Overwrite: overwrite}, o)
			return err
		})
	}
	switch {
	case isStatus(err, http.StatusNotFound):
		return outcome(Created, save(false))
	case err != nil:
		return Failed, err
	}
	stored, err := normalize(cur.Dashboard)
	if err != nil {
		return Failed, fmt.Errorf("dashboard %s: stored model: %w", uid, err)
	}
	if m, ok := stored.(map[string]any); ok {
		delete(m, "id")
		delete(m, "version")
	}
	folder := ""
	if cur.Meta != nil {
		folder = cur.Meta.FolderUID
		if cur.Meta.Provisioned && !reflect.DeepEqual(stored, want) {
			return Failed, fmt.Errorf("grafana: dashboard %s differs but was provisioned from files (dashboards build), "+
				"which Grafana does not let the API change; change the files, or remove them to manage it through the API", uid)
		}
	}
	if folder == FolderUID && reflect.DeepEqual(stored, want) {
		return Unchanged, nil
	}
	return outcome(Updated, save(true))
}

// normalize returns v as encoding/json decodes its JSON encoding, so that
// models built in Go and models read from Grafana compare with
// reflect.DeepEqual.
func normalize(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// clientOption is the generated clients' ClientOption, which every package
// of the client declares anew.
type clientOption = func(*runtime.ClientOperation)

// request describes one API request, for messages.
type request struct {
	verb, object string // "save", "dashboard opsmetrics-anomalies"
	method, path string // "POST", "/dashboards/db" (under /api)
	needs        string // the role a 403 means is missing
}

// Roles the requests need, for 403 messages.
const (
	needsFolderRole = "needs Editor/Admin on folder " + FolderUID
	needsAdmin      = "needs the Admin role in the organisation"
)

func folderRequest(verb, method, path string) request {
	return request{verb: verb, object: "folder " + FolderUID, method: method, path: path, needs: needsFolderRole}
}

func dataSourceRequest(verb, uid, method, path string) request {
	return request{verb: verb, object: "data source " + uid, method: method, path: path, needs: needsAdmin}
}

func dashboardRequest(verb, uid, method, path string) request {
	return request{verb: verb, object: "dashboard " + uid, method: method, path: path, needs: needsFolderRole}
}

// call runs one request of the API client with ctx, and turns its failure
// into an error a user can act on.
func (p *Provisioner) call(ctx context.Context, r request, f func(clientOption) error) error {
	x := &exchange{}
	rctx := context.WithValue(ctx, exchangeKey{}, x)
	err := f(func(op *runtime.ClientOperation) { op.Context = rctx })
	if err == nil {
		return nil
	}
	return p.explain(r, x, err)
}

// apiError is a failed request, with a message a user can act on.
type apiError struct {
	status int // HTTP status; 0 when there was no response
	msg    string
}

func (e *apiError) Error() string { return e.msg }

// isStatus reports whether err is a request Grafana answered with status.
func isStatus(err error, status int) bool {
	var e *apiError
	return errors.As(err, &e) && e.status == status
}

// typedError is what every error response of the generated client
// implements: *dashboards.PostDashboardUnauthorized, ...Forbidden,
// ...NotFound, ...PreconditionFailed, ...InternalServerError and the
// others of every operation.
type typedError interface {
	error
	Code() int
	GetPayload() *models.ErrorResponseBody
}

// explain maps a failed request to a message. The status comes from the
// client's typed error response, or its APIError for a status the spec
// does not list, or else from the recorded exchange (the client could not
// decode the body, say an HTML page from a proxy).
func (p *Provisioner) explain(r request, x *exchange, err error) error {
	var (
		status          int
		message, reason string
		typed           typedError
		untyped         *runtime.APIError
	)
	switch {
	case errors.As(err, &typed):
		status = typed.Code()
		if b := typed.GetPayload(); b != nil && b.Message != nil {
			message, reason = *b.Message, b.Status
			if b.Error != "" {
				message += ": " + b.Error
			}
		}
	case errors.As(err, &untyped):
		status = untyped.Code
	case x.status != 0:
		status = x.status
	default:
		// No response: the URL is unreachable, or ctx ended. Neither the
		// URL (it holds no credentials) nor the error holds a secret.
		return fmt.Errorf("grafana: %s %s: %w", r.verb, r.object, err)
	}
	if message == "" {
		message, reason = decodeBody(x.body)
	}
	message = p.redact(message)
	e := &apiError{status: status}
	switch {
	case status == http.StatusUnauthorized:
		e.msg = "grafana: authentication failed (check the token or user/password)"
	case status == http.StatusForbidden:
		who := "the token"
		if p.g.Token == "" {
			who = fmt.Sprintf("user %q", p.g.User)
		}
		e.msg = fmt.Sprintf("grafana: %s lacks permission to %s %s (%s)", who, r.verb, r.object, r.needs)
	case status == http.StatusNotFound:
		e.msg = fmt.Sprintf("grafana: %s %s: %s %s not found (is the URL right?)", r.verb, r.object, r.method, p.endpoint(r.path))
	case status == http.StatusPreconditionFailed && reason == "name-exists":
		e.msg = fmt.Sprintf("grafana: %s: another dashboard in folder %s has the same title; rename or move it "+
			"(opsmetrics overwrites only the UIDs it owns)", r.object, FolderUID)
	case status == http.StatusPreconditionFailed && reason == "plugin-dashboard":
		e.msg = fmt.Sprintf("grafana: %s: a plugin's dashboard has this UID: %s", r.object, message)
	case status == http.StatusPreconditionFailed:
		e.msg = fmt.Sprintf("grafana: %s changed in Grafana since it was read (version mismatch); run again to overwrite it", r.object)
	case status >= 500:
		e.msg = fmt.Sprintf("grafana: server error %d on %s %s (%s %s): %s", status, r.verb, r.object, r.method, p.endpoint(r.path), message)
	default:
		e.msg = fmt.Sprintf("grafana: %s %s: %d %s: %s", r.verb, r.object, status, http.StatusText(status), message)
	}
	return e
}

// endpoint is the full URL of path under /api, for messages.
func (p *Provisioner) endpoint(path string) string {
	return strings.TrimSuffix(p.g.URL, "/") + gapi.DefaultBasePath + path
}

// redact removes the secrets from s, text a server sent: a server that
// quotes its request must not make a secret reach an error or a log.
func (p *Provisioner) redact(s string) string {
	secrets := []string{p.g.Token, p.g.Password, p.clickHousePassword()}
	if p.g.Password != "" { // as the Authorization header carries it
		secrets = append(secrets, base64.StdEncoding.EncodeToString([]byte(p.g.User+":"+p.g.Password)))
	}
	for _, secret := range secrets {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "[redacted]")
		}
	}
	return s
}

func (p *Provisioner) clickHousePassword() string {
	if p.ds.PasswordEnv == "" {
		return ""
	}
	return os.Getenv(p.ds.PasswordEnv)
}

// maxQuoted bounds how much of a response body a message quotes.
const maxQuoted = 512

// decodeBody returns the message and status of Grafana's JSON error body,
// or else the body itself, shortened.
func decodeBody(b []byte) (message, reason string) {
	var body struct {
		Message, Status, Error string
	}
	if json.Unmarshal(b, &body) == nil && body.Message != "" {
		if body.Error != "" {
			body.Message += ": " + body.Error
		}
		return body.Message, body.Status
	}
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > maxQuoted {
		s = s[:maxQuoted] + "..."
	}
	return s, ""
}

// exchange is what recorder saw of the response to a failed request.
type exchange struct {
	status int
	body   []byte
}

type exchangeKey struct{}

// recorder keeps the status and the start of the body of each error
// response in the request's exchange, and leaves the body readable for
// the client.
type recorder struct{ next http.RoundTripper }

// RoundTrip implements http.RoundTripper.
func (t recorder) RoundTrip(r *http.Request) (*http.Response, error) {
	res, err := t.next.RoundTrip(r)
	if err != nil || res.StatusCode < 400 {
		return res, err
	}
	x, ok := r.Context().Value(exchangeKey{}).(*exchange)
	if !ok {
		return res, nil
	}
	b, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	res.Body.Close()
	res.Body = io.NopCloser(bytes.NewReader(b))
	x.status, x.body = res.StatusCode, b
	return res, nil
}
