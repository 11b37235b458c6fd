package event

// The JSON fields of the structs the scanner (scan.go) decodes into, by
// their names in the struct tags; TestScanFieldsMatchTags keeps the two in
// step.

var deploymentNames = []string{"deployment_id", "service", "team", "environment", "started_at", "finished_at", "status", "version", "artifact", "unplanned", "fixes_incident", "changes", "actor", "pipeline"}

func (*Deployment) names() []string { return deploymentNames }

func (d *Deployment) field(key []byte) (int, any) {
	switch string(key) {
	case "deployment_id":
		return 0, &d.ID
	case "service":
		return 1, &d.Service
	case "team":
		return 2, &d.Team
	case "environment":
		return 3, &d.Environment
	case "started_at":
		return 4, &d.StartedAt
	case "finished_at":
		return 5, &d.FinishedAt
	case "status":
		return 6, (*string)(&d.Status)
	case "version":
		return 7, &d.Version
	case "artifact":
		return 8, &d.Artifact
	case "unplanned":
		return 9, &d.Unplanned
	case "fixes_incident":
		return 10, &d.FixesIncident
	case "changes":
		return 11, &d.Changes
	case "actor":
		return 12, &d.Actor
	case "pipeline":
		return 13, &d.Pipeline
	}
	return 0, nil
}

var incidentNames = []string{"incident_id", "title", "service", "team", "environment", "severity", "detection_source", "impact_started_at", "detected_at", "acknowledged_at", "mitigated_at", "resolved_at", "cause_deployment_id", "cause_commit"}

func (*Incident) names() []string { return incidentNames }

func (i *Incident) field(key []byte) (int, any) {
	switch string(key) {
	case "incident_id":
		return 0, &i.ID
	case "title":
		return 1, &i.Title
	case "service":
		return 2, &i.Service
	case "team":
		return 3, &i.Team
	case "environment":
		return 4, &i.Environment
	case "severity":
		return 5, (*string)(&i.Severity)
	case "detection_source":
		return 6, (*string)(&i.DetectionSource)
	case "impact_started_at":
		return 7, &i.ImpactStartedAt
	case "detected_at":
		return 8, &i.DetectedAt
	case "acknowledged_at":
		return 9, &i.AcknowledgedAt
	case "mitigated_at":
		return 10, &i.MitigatedAt
	case "resolved_at":
		return 11, &i.ResolvedAt
	case "cause_deployment_id":
		return 12, &i.CauseDeployment
	case "cause_commit":
		return 13, &i.CauseCommit
	}
	return 0, nil
}

var patchNames = []string{"patch_id", "severity", "target", "target_type", "service", "team", "environment", "released_at", "applied_at", "outcome"}

func (*Patch) names() []string { return patchNames }

func (p *Patch) field(key []byte) (int, any) {
	switch string(key) {
	case "patch_id":
		return 0, &p.ID
	case "severity":
		return 1, (*string)(&p.Severity)
	case "target":
		return 2, &p.Target
	case "target_type":
		return 3, (*string)(&p.TargetType)
	case "service":
		return 4, &p.Service
	case "team":
		return 5, &p.Team
	case "environment":
		return 6, &p.Environment
	case "released_at":
		return 7, &p.ReleasedAt
	case "applied_at":
		return 8, &p.AppliedAt
	case "outcome":
		return 9, (*string)(&p.Outcome)
	}
	return 0, nil
}

var changeNames = []string{"change_id", "service", "team", "repository", "author", "authored_at", "merged_at"}

func (*Change) names() []string { return changeNames }

func (c *Change) field(key []byte) (int, any) {
	switch string(key) {
	case "change_id":
		return 0, &c.ID
	case "service":
		return 1, &c.Service
	case "team":
		return 2, &c.Team
	case "repository":
		return 3, &c.Repository
	case "author":
		return 4, &c.Author
	case "authored_at":
		return 5, &c.AuthoredAt
	case "merged_at":
		return 6, &c.MergedAt
	}
	return 0, nil
}

var cloudEventNames = []string{"specversion", "id", "source", "type", "subject", "time", "datacontenttype", "data", "data_base64",
	ExtensionActor, ExtensionPipeline}

func (*cloudEvent) names() []string { return cloudEventNames }

func (ce *cloudEvent) field(key []byte) (int, any) {
	switch string(key) {
	case "specversion":
		return 0, &ce.SpecVersion
	case "id":
		return 1, &ce.ID
	case "source":
		return 2, &ce.Source
	case "type":
		return 3, &ce.Type
	case "subject":
		return 4, &ce.Subject
	case "time":
		return 5, &ce.Time
	case "datacontenttype":
		return 6, &ce.DataContentType
	case "data":
		return 7, &ce.Data
	case "data_base64":
		return 8, &ce.DataBase64
	case ExtensionActor:
		return 9, &ce.Actor
	case ExtensionPipeline:
		return 10, &ce.Pipeline
	}
	return 0, nil
}

var cdEventNames = []string{"context", "subject", "customData", "customDataContentType"}

func (*cdEvent) names() []string { return cdEventNames }

func (cd *cdEvent) field(key []byte) (int, any) {
	switch string(key) {
	case "context":
		return 0, &cd.Context
	case "subject":
		return 1, &cd.Subject
	case "customData":
		return 2, &cd.CustomData
	case "customDataContentType":
		return 3, &cd.CustomDataContentType
	}
	return 0, nil
}

var cdContextNames = []string{"specversion", "version", "id", "source", "type", "timestamp"}

func (*cdContext) names() []string { return cdContextNames }

func (c *cdContext) field(key []byte) (int, any) {
	switch string(key) {
	case "specversion":
		return 0, &c.SpecVersion
	case "version":
		return 1, &c.Version
	case "id":
		return 2, &c.ID
	case "source":
		return 3, &c.Source
	case "type":
		return 4, &c.Type
	case "timestamp":
		return 5, &c.Timestamp
	}
	return 0, nil
}

var cdSubjectNames = []string{"id", "source", "type", "content"}

func (*cdSubject) names() []string { return cdSubjectNames }

func (s *cdSubject) field(key []byte) (int, any) {
	switch string(key) {
	case "id":
		return 0, &s.ID
	case "source":
		return 1, &s.Source
	case "type":
		return 2, &s.Type
	case "content":
		return 3, &s.Content
	}
	return 0, nil
}

var cdSubjectFieldsNames = []string{"environment", "service", "repository", "artifactId", "description", "ticketURI"}

func (*cdSubjectFields) names() []string { return cdSubjectFieldsNames }

func (f *cdSubjectFields) field(key []byte) (int, any) {
	switch string(key) {
	case "environment":
		return 0, &f.Environment
	case "service":
		return 1, &f.Service
	case "repository":
		return 2, &f.Repository
	case "artifactId":
		return 3, &f.ArtifactID
	case "description":
		return 4, &f.Description
	case "ticketURI":
		return 5, &f.TicketURI
	}
	return 0, nil
}

var cdRefNames = []string{"id", "source"}

func (*cdRef) names() []string { return cdRefNames }

func (r *cdRef) field(key []byte) (int, any) {
	switch string(key) {
	case "id":
		return 0, &r.ID
	case "source":
		return 1, &r.Source
	}
	return 0, nil
}
