package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
	"github.com/opsmetrics/opsmetrics/anomaly"
	"github.com/opsmetrics/opsmetrics/baselines"
)

// The anomalies dashboard's queries come from the owners of the tables
// they read: baselines (current_baselines, kpi_series) and anomaly
// (anomalies, and judged_intervals joined to kpi_series).
var (
	SeriesOptionsSQL = baselines.SeriesOptionsSQL
	SeriesSQL        = anomaly.JudgedSeriesSQL
	UnitSQL          = baselines.UnitSQL
	ForecastSQL      = baselines.ForecastSQL
	JudgementSQL     = anomaly.JudgementSQL
	StatusSQL        = baselines.StatusSQL
	AnomaliesSQL     = anomaly.AnomaliesSQL
	FactorsSQL       = anomaly.FactorsSQL
	AnnotationSQL    = anomaly.AnnotationSQL
)

// SeriesVariable is the anomalies dashboard's one choice: a series that
// exists in the range, listed by a readable name, whose value is its key.
const SeriesVariable = "series"

// LinkVariables are hidden variables of a series' parts: links that name a
// series by them (an alert's var-kpi, var-step, var-service, var-team and
// var-environment) list that series first, so Grafana selects it.
var LinkVariables = []string{"kpi", "step", "service", "team", "environment"}

// UnitRefID is the band panel's query of its unit (UnitSQL), which
// Grafana's "Config from query results" transformation applies to the
// panel's numbers.
const UnitRefID = "unit"

// Anomalies is the anomalies and baselines dashboard: one KPI series, chosen
// by the series variable, drawn with its learnt band and its anomalies.
// Alerts link here with their series named.
func Anomalies(o Options) *dashboard.DashboardBuilder {
	series := dashboard.NewQueryVariableBuilder(SeriesVariable).Label("series").Datasource(clickhouse()).
		Description("The KPI series to draw: KPI · step · slice. Only series with a baseline and an observed interval in the range are listed.").
		Query(dashboard.StringOrMap{String: cog.ToPtr(SeriesOptionsSQL)}).
		Definition(SeriesOptionsSQL).
		AllowCustomValue(false).Refresh(dashboard.VariableRefreshOnTimeRangeChanged)
	b := dashboard.NewDashboardBuilder("opsmetrics: anomalies and baselines").
		Uid(AnomaliesUID).
		Tags([]string{"opsmetrics"}).
		Description("Each KPI series with the band its baseline learnt, and the anomalies found (docs/baselines.md).").
		Time("now-30d", "now").
		Timezone(common.TimeZoneUtc).
		Links(links())
	for _, name := range LinkVariables {
		b.WithVariable(dashboard.NewTextBoxVariableBuilder(name).Hide(dashboard.VariableHideHideVariable).
			Description("Set by links that name a series by its parts; puts that series first in the series variable."))
	}
	return b.
		WithVariable(series).
		Annotation(dashboard.NewAnnotationQueryBuilder().Name("anomalies").Datasource(clickhouse()).Enable(true).
			IconColor("red").Target(SQL(AnnotationSQL, true).RefId("anomalies"))).
		WithPanel(stat.NewPanelBuilder().Title("Judgement of this series in range").
			Description("How many intervals of the chosen series detection judged in the range, and how many it flagged; where it judged none, the command that judges the range.").
			Datasource(clickhouse()).Unit("string").Height(3).Span(24).GraphMode(common.BigValueGraphModeNone).TextMode(common.BigValueTextModeValue).
			ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}).Fields("/^judgement$/")).
			NoValue("No series chosen: pick one in the series variable (none is listed when no series has an observed interval in the range).").
			WithTarget(SQL(JudgementSQL, true).RefId("A"))).
		WithPanel(timeseries.NewPanelBuilder().Title("${series:text}: observed and expected band").
			Description("Durations in hours, rates in percent, counts as counted: the unit follows the series' KPI. The band of each interval is the one of the baseline that judged it, learnt from the data before it (opsmetrics anomaly detect --from --to judges a past range); intervals never judged have none. Flagged: the intervals detection flagged.").
			Datasource(clickhouse()).Unit("short").Height(10).Span(24).
			NoValue("No observed interval of this series in range: choose a series listed for this range.").
			// The flagged intervals are red points over the line.
			OverrideByName("flagged", []dashboard.DynamicConfigValue{
				{Id: "custom.drawStyle", Value: "points"},
				{Id: "custom.pointSize", Value: 10},
				{Id: "color", Value: map[string]string{"mode": "fixed", "fixedColor": "red"}},
			}).
			WithTarget(SQL(SeriesSQL, false).RefId("A")).
			WithTarget(SQL(UnitSQL, true).RefId(UnitRefID)).
			WithTransformation(dashboard.DataTransformerConfig{Id: "configFromData", Options: map[string]any{
				"configRefId": UnitRefID,
				"mappings":    []map[string]string{{"fieldName": "unit", "handlerKey": "unit"}},
				"applyTo":     map[string]string{"id": "byType", "options": "number"},
			}})).
		WithPanel(timeseries.NewPanelBuilder().Title("${series:text}: observed and forecast").
			Description("The observed values and, from the end of the current baseline's training window on, its expected value and band of each interval: the forecast (opsmetrics forecast; docs/forecasts.md). End the range in the future (now+14d) to see the intervals ahead. The band is detection's, at 1 − α: opsmetrics forecast and the API give the narrower 90% planning band.").
			Datasource(clickhouse()).Unit("short").Height(10).Span(24).
			NoValue("No current baseline of this series: run opsmetrics baselines learn.").
			OverrideByName("expected", []dashboard.DynamicConfigValue{
				{Id: "custom.lineStyle", Value: map[string]any{"fill": "dash", "dash": []int{10, 10}}},
			}).
			WithTarget(SQL(ForecastSQL, false).RefId("A")).
			WithTarget(SQL(UnitSQL, true).RefId(UnitRefID)).
			WithTransformation(dashboard.DataTransformerConfig{Id: "configFromData", Options: map[string]any{
				"configRefId": UnitRefID,
				"mappings":    []map[string]string{{"fieldName": "unit", "handlerKey": "unit"}},
				"applyTo":     map[string]string{"id": "byType", "options": "number"},
			}})).
		WithPanel(table.NewPanelBuilder().Title("Anomalies of this series").
			Description("The intervals of the chosen series judged outside their band, with the direction and severity, the owner and tier labels of their alert from the service catalog opsmetrics last stored (the slice's team, else unowned, where the catalog does not know the service), and the contributing factors of the alerted ones (docs/baselines.md, docs/alerting.md).").
			Datasource(clickhouse()).Height(8).Span(24).
			NoValue("No anomalies of this series in range (the judgement panel above says whether the range was judged).").
			WithTarget(SQL(AnomaliesSQL(o.tiers()), true).RefId("A"))).
		WithPanel(table.NewPanelBuilder().Title("Contributing factors of this series' anomalies").
			Description("For each alerted anomaly of the chosen series, the values of each dimension below it (service, team, version, actor, pipeline, detection source, severity, …) that explain it, in the order detection found them: the value's harmful events, its trials (deployments, patches due or durations), the events expected of it at the baseline, its excess over them, its share of its dimension's excess in percent, and the events it was counted among (docs/baselines.md, \"Contributing factors\").").
			Datasource(clickhouse()).Height(8).Span(24).
			NoValue("No contributing factors: no alerted anomaly of this series in range, or none explained.").
			WithTarget(SQL(FactorsSQL, true).RefId("A"))).
		WithPanel(table.NewPanelBuilder().Title("Baselines of this KPI: ready or learning").
			Description("Every series of the chosen series' KPI with its baseline's state: ready to judge, or still learning.").
			Datasource(clickhouse()).Height(8).Span(24).
			NoValue("No baselines of this KPI: run opsmetrics baselines learn.").
			WithTarget(SQL(StatusSQL, true).RefId("A")))
}
