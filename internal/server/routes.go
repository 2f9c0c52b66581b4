package server

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/slipway-ml/slipway/internal/auth"
	"github.com/slipway-ml/slipway/static"
)

// public marks a route that answers without credentials. The route-walk
// test holds the allowlist of such routes; adding one here without adding
// it there fails the build's tests.
const public auth.Role = ""

// streamingRoutes carry bodies or answers of any size (artifacts): no body
// limit, no request deadline, no compression. They bound what they read
// themselves.
var streamingRoutes = map[string]bool{
	"POST /api/v1/models/:model/versions":                      true,
	"GET /api/v1/models/:model/versions/:version/artifacts/*":  true,
	"HEAD /api/v1/models/:model/versions/:version/artifacts/*": true,
	"PUT /api/v1/models/:model/versions/:version/artifacts/*":  true,
	// finalize reads back objects put to presigned URLs: GiBs take time
	"POST /api/v1/models/:model/versions/:version/finalize":           true,
	"POST /api/v1/datasets/:dataset/versions":                         true,
	"POST /api/v1/models/:model/versions/:version/evaluations":        true,
	"GET /api/v1/models/:model/versions/:version/evaluations/:id/raw": true,
	"GET /api/v1/datasets/:dataset/versions/:version/file":            true,
	"HEAD /api/v1/datasets/:dataset/versions/:version/file":           true,
	"GET /models/:model/versions/:version/artifacts/*":                true,
	"GET /datasets/:dataset/versions/:version/file":                   true,
	"GET /models/:model/versions/:version/evaluations/:id/raw":        true,
}

func isStreaming(c echo.Context) bool { return streamingRoutes[c.Request().Method+" "+c.Path()] }

// routes is the table of every route and the role it needs.
func (s *Server) routes() {
	e := s.echo
	add := func(method, path string, role auth.Role, h echo.HandlerFunc) {
		if role == public {
			e.Add(method, path, h)
			return
		}
		if method == http.MethodPost && strings.HasPrefix(path, "/api/") {
			e.Add(method, path, h, requireRole(role), s.idempotent)
			return
		}
		e.Add(method, path, h, requireRole(role))
	}

	// Health and static files.
	add("GET", "/healthz", public, s.healthz)
	add("GET", "/readyz", public, s.readyz)
	add("GET", static.Prefix+"*", public, echo.WrapHandler(s.deps.Assets))

	// JSON API.
	add("GET", "/api/v1/openapi.json", public, s.deps.OpenAPI.Serve)
	add("GET", "/api/v1/me", auth.RoleViewer, s.api.Me)
	add("GET", "/api/v1/tokens", auth.RoleViewer, s.api.ListTokens)
	add("POST", "/api/v1/tokens", auth.RoleViewer, s.api.CreateToken)
	add("DELETE", "/api/v1/tokens/:id", auth.RoleViewer, s.api.RevokeToken)
	add("GET", "/api/v1/users", auth.RoleAdmin, s.api.ListUsers)
	add("POST", "/api/v1/users", auth.RoleAdmin, s.api.CreateUser)
	add("GET", "/api/v1/users/:name", auth.RoleAdmin, s.api.GetUser)
	add("PATCH", "/api/v1/users/:name", auth.RoleAdmin, s.api.UpdateUser)
	add("GET", "/api/v1/users/:name/tokens", auth.RoleAdmin, s.api.ListUserTokens)
	add("POST", "/api/v1/users/:name/tokens", auth.RoleAdmin, s.api.CreateUserToken)
	add("PUT", "/api/v1/me/password", auth.RoleViewer, s.api.ChangePassword)
	add("GET", "/api/v1/audit", auth.RoleAdmin, s.api.ListAudit)
	add("GET", "/api/v1/models", auth.RoleViewer, s.api.ListModels)
	add("POST", "/api/v1/models", auth.RoleContributor, s.api.CreateModel)
	add("GET", "/api/v1/models/:model", auth.RoleViewer, s.api.GetModel)
	add("PATCH", "/api/v1/models/:model", auth.RoleContributor, s.api.UpdateModel)
	add("GET", "/api/v1/models/:model/versions", auth.RoleViewer, s.api.ListVersions)
	add("POST", "/api/v1/models/:model/versions", auth.RoleContributor, s.api.RegisterVersion)
	add("GET", "/api/v1/models/:model/versions/:version", auth.RoleViewer, s.api.GetVersion)
	add("GET", "/api/v1/models/:model/versions/:version/artifacts/*", auth.RoleViewer, s.api.DownloadArtifact)
	add("HEAD", "/api/v1/models/:model/versions/:version/artifacts/*", auth.RoleViewer, s.api.DownloadArtifact)
	add("PUT", "/api/v1/models/:model/versions/:version/artifacts/*", auth.RoleContributor, s.api.UploadArtifact)
	add("POST", "/api/v1/models/:model/versions/:version/finalize", auth.RoleContributor, s.api.FinalizeVersion)
	add("GET", "/api/v1/models/:model/versions/:version/provenance", auth.RoleViewer, s.api.Provenance)
	add("GET", "/api/v1/models/:model/versions/:version/evaluations", auth.RoleViewer, s.api.ListEvaluations)
	add("POST", "/api/v1/models/:model/versions/:version/evaluations", auth.RoleContributor, s.api.AttachEvaluation)
	add("GET", "/api/v1/models/:model/versions/:version/evaluations/:id", auth.RoleViewer, s.api.GetEvaluation)
	add("GET", "/api/v1/models/:model/versions/:version/evaluations/:id/raw", auth.RoleViewer, s.api.DownloadEvaluation)
	add("POST", "/api/v1/models/:model/versions/:version/promotions", auth.RoleContributor, s.api.RequestPromotion)
	add("GET", "/api/v1/models/:model/stages", auth.RoleViewer, s.api.ListStages)
	add("POST", "/api/v1/models/:model/stages", auth.RoleAdmin, s.api.CreateStage)
	add("GET", "/api/v1/models/:model/stages/:stage", auth.RoleViewer, s.api.GetStage)
	add("GET", "/api/v1/models/:model/stages/:stage/history", auth.RoleViewer, s.api.StageHistory)
	add("GET", "/api/v1/models/:model/stages/:stage/holder", auth.RoleViewer, s.api.StageHolder)
	add("GET", "/api/v1/models/:model/stages/:stage/policy", auth.RoleViewer, s.api.GetPolicy)
	add("PUT", "/api/v1/models/:model/stages/:stage/policy", auth.RoleAdmin, s.api.PutPolicy)
	add("GET", "/api/v1/models/:model/stages/:stage/policy/revisions", auth.RoleViewer, s.api.ListPolicyRevisions)
	add("GET", "/api/v1/promotions", auth.RoleViewer, s.api.ListPromotions)
	add("GET", "/api/v1/promotions/:id", auth.RoleViewer, s.api.GetPromotion)
	add("POST", "/api/v1/promotions/:id/reviews", auth.RoleReviewer, s.api.ReviewPromotion)
	add("POST", "/api/v1/promotions/:id/cancel", auth.RoleContributor, s.api.CancelPromotion)
	add("GET", "/api/v1/datasets", auth.RoleViewer, s.api.ListDatasets)
	add("POST", "/api/v1/datasets", auth.RoleContributor, s.api.CreateDataset)
	add("GET", "/api/v1/datasets/:dataset", auth.RoleViewer, s.api.GetDataset)
	add("GET", "/api/v1/datasets/:dataset/versions", auth.RoleViewer, s.api.ListDatasetVersions)
	add("POST", "/api/v1/datasets/:dataset/versions", auth.RoleContributor, s.api.CreateDatasetVersion)
	add("GET", "/api/v1/datasets/:dataset/versions/:version", auth.RoleViewer, s.api.GetDatasetVersion)
	add("GET", "/api/v1/datasets/:dataset/versions/:version/file", auth.RoleViewer, s.api.DownloadDatasetFile)
	add("HEAD", "/api/v1/datasets/:dataset/versions/:version/file", auth.RoleViewer, s.api.DownloadDatasetFile)
	add("GET", "/api/v1/datasets/:dataset/versions/:version/quality", auth.RoleViewer, s.api.ListQualityResults)
	add("POST", "/api/v1/datasets/:dataset/versions/:version/quality", auth.RoleContributor, s.api.AddQualityResult)
	add("GET", "/api/v1/datasets/:dataset/versions/:version/quality/:id/raw", auth.RoleViewer, s.api.GetRawQualityResult)
	add("GET", "/api/v1/datasets/:dataset/versions/:version/impact", auth.RoleViewer, s.api.DatasetImpact)
	add("GET", "/api/v1/runs", auth.RoleViewer, s.api.ListRuns)
	add("POST", "/api/v1/runs", auth.RoleContributor, s.api.ReportRun)
	add("GET", "/api/v1/runs/:id", auth.RoleViewer, s.api.GetRun)
	add("GET", "/api/v1/lineage", auth.RoleViewer, s.api.LineageGraph)
	add("POST", "/api/v1/openlineage", auth.RoleContributor, s.api.IngestOpenLineage)
	add("GET", "/api/v1/webhooks", auth.RoleAdmin, s.api.ListWebhooks)
	add("POST", "/api/v1/webhooks", auth.RoleAdmin, s.api.CreateWebhook)
	add("GET", "/api/v1/webhooks/:id", auth.RoleAdmin, s.api.GetWebhook)
	add("PATCH", "/api/v1/webhooks/:id", auth.RoleAdmin, s.api.UpdateWebhook)
	add("POST", "/api/v1/webhooks/:id/rotate", auth.RoleAdmin, s.api.RotateWebhookSecret)
	add("POST", "/api/v1/webhooks/:id/test", auth.RoleAdmin, s.api.TestWebhook)
	add("POST", "/api/v1/webhooks/:id/replay", auth.RoleAdmin, s.api.Replay)
	add("GET", "/api/v1/webhooks/:id/deliveries", auth.RoleAdmin, s.api.ListDeliveries)
	add("GET", "/api/v1/webhooks/:id/deliveries/:message", auth.RoleAdmin, s.api.GetDelivery)
	add("POST", "/api/v1/webhooks/:id/deliveries/:message/redeliver", auth.RoleAdmin, s.api.Redeliver)

	// Browser UI.
	add("GET", "/login", public, s.ui.LoginForm)
	add("POST", "/login", public, s.ui.Login)
	add("POST", "/logout", auth.RoleViewer, s.ui.Logout)
	add("GET", "/", auth.RoleViewer, s.ui.Dashboard)
	add("GET", "/settings/tokens", auth.RoleViewer, s.ui.Tokens)
	add("POST", "/settings/tokens", auth.RoleViewer, s.ui.CreateToken)
	add("POST", "/settings/tokens/:id/revoke", auth.RoleViewer, s.ui.RevokeToken)
	add("GET", "/settings/password", auth.RoleViewer, s.ui.Password)
	add("POST", "/settings/password", auth.RoleViewer, s.ui.ChangePassword)
	add("GET", "/admin/users", auth.RoleAdmin, s.ui.Users)
	add("POST", "/admin/users", auth.RoleAdmin, s.ui.CreateUser)
	add("GET", "/admin/users/:name", auth.RoleAdmin, s.ui.User)
	add("POST", "/admin/users/:name", auth.RoleAdmin, s.ui.UpdateUser)
	add("POST", "/admin/users/:name/password", auth.RoleAdmin, s.ui.SetUserPassword)
	add("POST", "/admin/users/:name/tokens", auth.RoleAdmin, s.ui.CreateToken)
	add("POST", "/admin/users/:name/tokens/:id/revoke", auth.RoleAdmin, s.ui.RevokeToken)
	add("GET", "/audit", auth.RoleAdmin, s.ui.Audit)
	add("GET", "/webhooks", auth.RoleAdmin, s.ui.WebhooksList)
	add("POST", "/webhooks", auth.RoleAdmin, s.ui.CreateWebhook)
	add("GET", "/webhooks/:id", auth.RoleAdmin, s.ui.Webhook)
	add("POST", "/webhooks/:id/:verb", auth.RoleAdmin, s.ui.WebhookAction)
	add("POST", "/webhooks/:id/deliveries/:message/redeliver", auth.RoleAdmin, s.ui.Redeliver)
	add("GET", "/models", auth.RoleViewer, s.ui.Models)
	add("GET", "/models/:model", auth.RoleViewer, s.ui.Model)
	add("GET", "/models/:model/versions/:version/evaluations/:id/raw", auth.RoleViewer, s.ui.DownloadEvaluation)
	add("POST", "/models/:model/stages", auth.RoleAdmin, s.ui.CreateStage)
	add("GET", "/models/:model/stages/:stage/policy", auth.RoleViewer, s.ui.Policy)
	add("POST", "/models/:model/stages/:stage/policy", auth.RoleAdmin, s.ui.SavePolicy)
	add("GET", "/reviews", auth.RoleViewer, s.ui.Reviews)
	add("GET", "/promotions/:id", auth.RoleViewer, s.ui.Promotion)
	add("POST", "/promotions/:id/review", auth.RoleReviewer, s.ui.Review)
	add("POST", "/promotions/:id/cancel", auth.RoleContributor, s.ui.CancelPromotion)
	add("POST", "/models/:model", auth.RoleContributor, s.ui.UpdateModel)
	add("GET", "/models/:model/versions/:version", auth.RoleViewer, s.ui.Version)
	add("GET", "/datasets", auth.RoleViewer, s.ui.Datasets)
	add("GET", "/datasets/:dataset", auth.RoleViewer, s.ui.Dataset)
	add("GET", "/datasets/:dataset/diff", auth.RoleViewer, s.ui.DatasetDiff)
	add("GET", "/datasets/:dataset/versions/:version", auth.RoleViewer, s.ui.DatasetVersion)
	add("GET", "/runs", auth.RoleViewer, s.ui.Runs)
	add("GET", "/runs/:id", auth.RoleViewer, s.ui.Run)
	add("GET", "/lineage", auth.RoleViewer, s.ui.LineageExplorer)
	// The same handler as the API's, authorised by the session.
	add("GET", "/models/:model/versions/:version/artifacts/*", auth.RoleViewer, s.api.DownloadArtifact)
	add("GET", "/datasets/:dataset/versions/:version/file", auth.RoleViewer, s.api.DownloadDatasetFile)
}
