// Package event defines opsmetrics' event model: the four kinds of
// operations event (deployment, incident, patch and change), their identity,
// and the wire encodings they arrive in (native JSON, CloudEvents in
// structured and binary mode, and CDEvents, bare or carried in CloudEvents).
//
// Decode turns one Kafka message into an Event, a *DecodeError that says
// exactly why the message was rejected (the ingester dead-letters it), or a
// *Skipped for a valid CDEvent of a type opsmetrics does not store.
package event

import "time"

// Kind is the kind of an operations event.
type Kind string

// The four kinds of event.
const (
	KindDeployment Kind = "deployment"
	KindIncident   Kind = "incident"
	KindPatch      Kind = "patch"
	KindChange     Kind = "change"
)

// Kinds lists every kind, in a stable order.
var Kinds = []Kind{KindDeployment, KindIncident, KindPatch, KindChange}

// Encoding says how an event arrived on the wire.
type Encoding string

// The accepted encodings.
const (
	EncodingNative      Encoding = "native"
	EncodingCloudEvents Encoding = "cloudevents" // our own types in a CloudEvent, structured or binary
	EncodingCDEvents    Encoding = "cdevents"    // a CDEvent, bare or carried in a CloudEvent
)

// Event is one decoded operations event. Exactly one of Deployment, Incident,
// Patch and Change is set, matching Kind.
type Event struct {
	Kind Kind
	// ID is the event's identity, the key storage deduplicates on. For native
	// events it is the event_id field; for CloudEvents it is source and id
	// joined by a space, since the CloudEvents spec makes that pair unique.
	ID string
	// Time is when the event was emitted (native "time", CloudEvents "time").
	// It orders the messages of one entity; when absent the decoder uses the
	// latest timestamp the event carries.
	Time     time.Time
	Encoding Encoding

	Deployment *Deployment
	Incident   *Incident
	Patch      *Patch
	Change     *Change
}

// EntityKey returns the identity of the entity the event is about: the
// deployment, incident or change id, or the patch id and its target. Producers
// use it as the Kafka message key so that one entity's messages stay ordered
// within a partition.
func (e *Event) EntityKey() string {
	switch e.Kind {
	case KindDeployment:
		return e.Deployment.ID
	case KindIncident:
		return e.Incident.ID
	case KindPatch:
		return e.Patch.ID + "|" + e.Patch.Target
	case KindChange:
		return e.Change.ID
	}
	return ""
}

// Owner returns the service the event is about and its team field, which
// the ingester fills from the service catalog when the event sent none;
// service is empty when the event names none.
func (e *Event) Owner() (service string, team *string) {
	switch e.Kind {
	case KindDeployment:
		return e.Deployment.Service, &e.Deployment.Team
	case KindIncident:
		return e.Incident.Service, &e.Incident.Team
	case KindPatch:
		return e.Patch.Service, &e.Patch.Team
	case KindChange:
		return e.Change.Service, &e.Change.Team
	}
	return "", nil
}

// DeploymentStatus is the outcome of a deployment.
type DeploymentStatus string

// Deployment outcomes.
const (
	DeploymentSuccess    DeploymentStatus = "success"
	DeploymentFailure    DeploymentStatus = "failure"
	DeploymentRolledBack DeploymentStatus = "rolled_back"
)

// Deployment is one deployment of a service to an environment. Each message
// about a deployment carries its full state; the latest by event time wins.
type Deployment struct {
	ID          string           `json:"deployment_id"`
	Service     string           `json:"service"`
	Team        string           `json:"team,omitempty"`
	Environment string           `json:"environment"`
	StartedAt   time.Time        `json:"started_at"`
	FinishedAt  time.Time        `json:"finished_at"`
	Status      DeploymentStatus `json:"status"`
	Version     string           `json:"version,omitempty"`
	Artifact    string           `json:"artifact,omitempty"`
	// Unplanned marks a deployment made to fix a production incident: rework.
	Unplanned bool `json:"unplanned,omitempty"`
	// FixesIncident is the incident an unplanned deployment fixes, if known.
	FixesIncident string `json:"fixes_incident,omitempty"`
	// Changes are the commit SHAs (change ids) the deployment ships.
	Changes []string `json:"changes,omitempty"`
	// Actor is who or what triggered the deployment (a person, a bot, a
	// schedule), and Pipeline the pipeline that ran it, when the sender
	// says: contributing factors rank them.
	Actor    string `json:"actor,omitempty"`
	Pipeline string `json:"pipeline,omitempty"`
}

// Severity is the severity of an incident or a patch.
type Severity string

// Severities, most severe first.
const (
	SeverityCritical Severity = "critical"
	SeverityHigh     Severity = "high"
	SeverityMedium   Severity = "medium"
	SeverityLow      Severity = "low"
)

// DetectionSource says who noticed an incident first.
type DetectionSource string

// Detection sources.
const (
	DetectedByMonitoring DetectionSource = "monitoring"
	DetectedByCustomer   DetectionSource = "customer"
)

// Incident is one message of an incident's lifecycle. An incident is usually
// reported in several messages (opened, acknowledged, resolved) that share
// its ID; every field but ID is optional in any one message, and storage
// merges them whatever their order of arrival.
type Incident struct {
	ID              string          `json:"incident_id"`
	Title           string          `json:"title,omitempty"`
	Service         string          `json:"service,omitempty"`
	Team            string          `json:"team,omitempty"`
	Environment     string          `json:"environment,omitempty"`
	Severity        Severity        `json:"severity,omitempty"`
	DetectionSource DetectionSource `json:"detection_source,omitempty"`
	ImpactStartedAt time.Time       `json:"impact_started_at,omitzero"`
	DetectedAt      time.Time       `json:"detected_at,omitzero"`
	AcknowledgedAt  time.Time       `json:"acknowledged_at,omitzero"`
	MitigatedAt     time.Time       `json:"mitigated_at,omitzero"`
	ResolvedAt      time.Time       `json:"resolved_at,omitzero"`
	// CauseDeployment and CauseCommit name what caused the incident, when the
	// incident tool knows; they take precedence over inferred attribution.
	CauseDeployment string `json:"cause_deployment_id,omitempty"`
	CauseCommit     string `json:"cause_commit,omitempty"`
}

// PatchOutcome is what happened when a patch was applied.
type PatchOutcome string

// Patch outcomes. A patch with no outcome is still open.
const (
	PatchApplied    PatchOutcome = "applied"
	PatchFailed     PatchOutcome = "failed"
	PatchRolledBack PatchOutcome = "rolled_back"
)

// TargetType is the kind of thing a patch is applied to.
type TargetType string

// Patch target types.
const (
	TargetHost    TargetType = "host"
	TargetImage   TargetType = "image"
	TargetService TargetType = "service"
)

// Patch is one patch or security advisory for one target. A patch is usually
// reported twice, when it is released for the target and when it has been
// applied; messages with the same ID and Target are merged.
type Patch struct {
	ID          string       `json:"patch_id"`
	Severity    Severity     `json:"severity,omitempty"`
	Target      string       `json:"target"`
	TargetType  TargetType   `json:"target_type,omitempty"`
	Service     string       `json:"service,omitempty"`
	Team        string       `json:"team,omitempty"`
	Environment string       `json:"environment,omitempty"`
	ReleasedAt  time.Time    `json:"released_at,omitzero"`
	AppliedAt   time.Time    `json:"applied_at,omitzero"`
	Outcome     PatchOutcome `json:"outcome,omitempty"`
}

// Change is one commit or merge that a deployment can ship.
type Change struct {
	// ID is the commit SHA, or the merge commit's SHA for a merge.
	ID         string    `json:"change_id"`
	Service    string    `json:"service"`
	Team       string    `json:"team,omitempty"`
	Repository string    `json:"repository,omitempty"`
	Author     string    `json:"author,omitempty"`
	AuthoredAt time.Time `json:"authored_at,omitzero"`
	MergedAt   time.Time `json:"merged_at,omitzero"`
}
