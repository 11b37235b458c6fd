package event

import (
	"fmt"
	"time"
)

// Validate checks that e is complete and consistent: required fields,
// vocabularies, no timestamp after notAfter, and timestamps in a possible
// order. Decode calls it; producers can call it before sending.
func Validate(e *Event, notAfter time.Time) *DecodeError {
	if e.ID == "" {
		return reject(ReasonMissingID, "%s event has no id", e.Kind)
	}
	type stamp struct {
		name string
		t    time.Time
	}
	var (
		entity string
		stamps []stamp
		order  [][2]int // pairs of indexes into stamps: [earlier, later]
	)
	missing := func(field string) *DecodeError {
		return reject(ReasonMissingField, "%s: required field %s is missing or empty", entity, field)
	}
	invalid := func(field, value string, want string) *DecodeError {
		return reject(ReasonInvalidValue, "%s: %s %q is not one of %s", entity, field, value, want)
	}
	switch e.Kind {
	case KindDeployment:
		d := e.Deployment
		entity = "deployment " + d.ID
		switch {
		case d.ID == "":
			entity = "deployment event " + e.ID
			return missing("deployment_id")
		case d.Service == "":
			return missing("service")
		case d.Environment == "":
			return missing("environment")
		case d.Status == "":
			return missing("status")
		case d.FinishedAt.IsZero():
			return missing("finished_at")
		}
		switch d.Status {
		case DeploymentSuccess, DeploymentFailure, DeploymentRolledBack:
		default:
			return invalid("status", string(d.Status), "success, failure, rolled_back")
		}
		stamps = []stamp{{"started_at", d.StartedAt}, {"finished_at", d.FinishedAt}}
		order = [][2]int{{0, 1}}
	case KindIncident:
		i := e.Incident
		entity = "incident " + i.ID
		if i.ID == "" {
			entity = "incident event " + e.ID
			return missing("incident_id")
		}
		stamps = []stamp{{"impact_started_at", i.ImpactStartedAt}, {"detected_at", i.DetectedAt},
			{"acknowledged_at", i.AcknowledgedAt}, {"mitigated_at", i.MitigatedAt}, {"resolved_at", i.ResolvedAt}}
		order = [][2]int{{0, 1}, {0, 2}, {0, 3}, {0, 4}, {1, 2}, {1, 3}, {1, 4}, {2, 4}, {3, 4}}
		any := false
		for _, s := range stamps {
			any = any || !s.t.IsZero()
		}
		if !any {
			return reject(ReasonMissingField, "%s: a lifecycle message needs at least one of impact_started_at, detected_at, acknowledged_at, mitigated_at, resolved_at", entity)
		}
		if i.Severity != "" && !validSeverity(i.Severity) {
			return invalid("severity", string(i.Severity), "critical, high, medium, low")
		}
		switch i.DetectionSource {
		case "", DetectedByMonitoring, DetectedByCustomer:
		default:
			return invalid("detection_source", string(i.DetectionSource), "monitoring, customer")
		}
	case KindPatch:
		p := e.Patch
		entity = fmt.Sprintf("patch %s on %s", p.ID, p.Target)
		switch {
		case p.ID == "":
			entity = "patch event " + e.ID
			return missing("patch_id")
		case p.Target == "":
			entity = "patch " + p.ID
			return missing("target")
		case p.ReleasedAt.IsZero() && p.AppliedAt.IsZero():
			return missing("released_at or applied_at")
		}
		if p.Severity != "" && !validSeverity(p.Severity) {
			return invalid("severity", string(p.Severity), "critical, high, medium, low")
		}
		switch p.Outcome {
		case "", PatchApplied, PatchFailed, PatchRolledBack:
		default:
			return invalid("outcome", string(p.Outcome), "applied, failed, rolled_back")
		}
		switch p.TargetType {
		case "", TargetHost, TargetImage, TargetService:
		default:
			return invalid("target_type", string(p.TargetType), "host, image, service")
		}
		stamps = []stamp{{"released_at", p.ReleasedAt}, {"applied_at", p.AppliedAt}}
		order = [][2]int{{0, 1}}
	case KindChange:
		c := e.Change
		entity = "change " + c.ID
		switch {
		case c.ID == "":
			entity = "change event " + e.ID
			return missing("change_id")
		case c.Service == "":
			return missing("service")
		case c.AuthoredAt.IsZero() && c.MergedAt.IsZero():
			return missing("authored_at or merged_at")
		}
		stamps = []stamp{{"authored_at", c.AuthoredAt}, {"merged_at", c.MergedAt}}
		order = [][2]int{{0, 1}}
	default:
		return reject(ReasonUnknownKind, "kind %q is not one of deployment, incident, patch, change", e.Kind)
	}
	for _, s := range append(stamps, stamp{"time", e.Time}) {
		if !s.t.IsZero() && s.t.After(notAfter) {
			return reject(ReasonFutureTimestamp, "%s: %s %s is in the future (later than %s)", entity, s.name,
				s.t.UTC().Format(time.RFC3339), notAfter.UTC().Format(time.RFC3339))
		}
		if !s.t.IsZero() && s.t.Before(minTime) {
			return reject(ReasonInvalidValue, "%s: %s %s is before 1970", entity, s.name, s.t.UTC().Format(time.RFC3339))
		}
	}
	for _, o := range order {
		a, b := stamps[o[0]], stamps[o[1]]
		if !a.t.IsZero() && !b.t.IsZero() && b.t.Before(a.t) {
			return reject(ReasonTimeOrder, "%s: %s %s is before %s %s", entity, b.name, b.t.UTC().Format(time.RFC3339),
				a.name, a.t.UTC().Format(time.RFC3339))
		}
	}
	return nil
}

var minTime = time.Unix(1, 0)

func validSeverity(s Severity) bool {
	switch s {
	case SeverityCritical, SeverityHigh, SeverityMedium, SeverityLow:
		return true
	}
	return false
}
