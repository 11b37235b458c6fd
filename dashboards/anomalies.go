package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
	"github.com/opsmetrics/opsmetrics/anomaly"
	"github.com/opsmetrics/opsmetrics/baselines"
)

// The anomalies dashboard's queries come from the owners of the tables
// they read: baselines (current_baselines) and anomaly (anomalies, and
// judged_intervals joined to kpi_series).
var (
	SeriesSQL     = anomaly.JudgedSeriesSQL
	StatusSQL     = baselines.StatusSQL
	AnomaliesSQL  = anomaly.AnomaliesSQL
	AnnotationSQL = anomaly.AnnotationSQL
)

// Anomalies is the anomalies and baselines dashboard: one KPI series, chosen
// by the variables, drawn with its learnt band and its anomalies. Alerts
// link here with the variables set to their series.
func Anomalies() *dashboard.DashboardBuilder {
	kpi := dashboard.NewQueryVariableBuilder("kpi").Label("KPI").Datasource(clickhouse()).
		Query(dashboard.StringOrMap{String: cog.ToPtr(baselines.KPIsSQL)}).
		Refresh(dashboard.VariableRefreshOnDashboardLoad)
	step := dashboard.NewCustomVariableBuilder("step").Label("step").Values(dashboard.StringOrMap{String: cog.ToPtr("day,hour")})
	b := dashboard.NewDashboardBuilder("opsmetrics: anomalies and baselines").
		Uid(AnomaliesUID).
		Tags([]string{"opsmetrics"}).
		Description("Each KPI series with the band its baseline learnt, and the anomalies found (docs/baselines.md).").
		Time("now-30d", "now").
		Timezone(common.TimeZoneUtc).
		Links(links()).
		WithVariable(kpi).
		WithVariable(step).
		Annotation(dashboard.NewAnnotationQueryBuilder().Name("anomalies").Datasource(clickhouse()).Enable(true).
			IconColor("red").Target(SQL(AnnotationSQL, true).RefId("anomalies")))
	for _, v := range sliceVariables(baselines.Slices) {
		b.WithVariable(v)
	}
	return b.
		WithPanel(timeseries.NewPanelBuilder().Title("${kpi} (${step}): observed and expected band").
			Description("Durations in hours, rates in percent, counts as counted. The band of each interval is the one of the baseline that judged it, learnt from the data before it (opsmetrics anomaly detect --from --to judges a past range); intervals never judged have none. Flagged: the intervals detection flagged.").
			Datasource(clickhouse()).Unit("short").Height(10).Span(24).
			// The flagged intervals are red points over the line.
			OverrideByName("flagged", []dashboard.DynamicConfigValue{
				{Id: "custom.drawStyle", Value: "points"},
				{Id: "custom.pointSize", Value: 10},
				{Id: "color", Value: map[string]string{"mode": "fixed", "fixedColor": "red"}},
			}).
			WithTarget(SQL(SeriesSQL, false).RefId("A"))).
		WithPanel(table.NewPanelBuilder().Title("Anomalies of this series").
			Description("The intervals of the chosen series judged outside their band, with the direction and severity (docs/baselines.md).").
			Datasource(clickhouse()).Height(8).Span(24).
			WithTarget(SQL(AnomaliesSQL, true).RefId("A"))).
		WithPanel(table.NewPanelBuilder().Title("Baselines of ${kpi}: ready or learning").
			Description("Every series of the chosen KPI with its baseline's state: ready to judge, or still learning.").
			Datasource(clickhouse()).Height(8).Span(24).
			WithTarget(SQL(StatusSQL, true).RefId("A")))
}
