//! `/v1/admin/groups…`: list, create, show, rename and describe, roles, direct members, delete —
//! each a call of [`crate::admin::Edits`], as the CLI makes it.

use std::sync::Arc;

use axum::Json;
use axum::extract::State as Extract;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::body::{self, Q, Segments};
use super::page::{Page, PageQuery};
use super::{Problem, blocking};
use crate::admin::{CreateGroup, Edits};
use crate::service::Shared;
use crate::state::State;
use crate::views::{self, GroupDoc, GroupListItem};

/// `?stage=` and the page.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ListQuery {
    /// Only this stage's groups.
    stage: Option<String>,
    /// How many items at most (1–1000; 100 when absent).
    limit: Option<u32>,
    /// The `next` of the page before.
    cursor: Option<String>,
}

/// A group to create.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateBody {
    /// Its name, unique in its stage (compared case- and accent-insensitively).
    name: String,
    /// One of `daemon.stages`; it never changes afterwards.
    stage: String,
    /// Its description.
    #[serde(default)]
    description: String,
    /// Its roles, `App/Role`, from the `[[app]]` catalogue when there is one.
    #[serde(default)]
    roles: Vec<String>,
}

/// A new name and/or description.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UpdateBody {
    /// The new name.
    name: Option<String>,
    /// The new description.
    description: Option<String>,
}

/// Items to add and to remove.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct EditBody {
    /// To add.
    #[serde(default)]
    add: Vec<String>,
    /// To remove.
    #[serde(default)]
    remove: Vec<String>,
}

/// A group's roles after an edit.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct RolesDoc {
    /// `App/Role`, sorted.
    roles: Vec<String>,
}

/// What a direct-members edit did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct UsersDoc {
    /// Given the `direct` provenance.
    added: Vec<String>,
    /// Asked to be added, already direct members.
    already: Vec<String>,
    /// Whose `direct` provenance was removed.
    removed: Vec<RemovedDoc>,
}

/// A user whose direct membership was removed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct RemovedDoc {
    /// The user key.
    user: String,
    /// The provenances that still hold the membership (an IdP's): the user stays a member.
    remaining: Vec<String>,
}

/// `?remove_members=true`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct DeleteQuery {
    /// Remove the members too (else a group with members is refused with 409).
    #[serde(default)]
    remove_members: bool,
}

/// What a delete took.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct DeletedDoc {
    /// Each former member and the roles it lost.
    lost: Vec<super::problem::LostDoc>,
}

/// Runs an edit through [`Shared::edit`], its refusal as a problem document.
async fn edit<T: Send + 'static>(
    shared: &Arc<Shared>,
    run: impl FnOnce(&mut Edits<'_>) -> Result<T, crate::admin::AdminError> + Send + 'static,
) -> Result<T, Problem> {
    match shared.edit(run).await {
        Ok(done) => Ok(done?),
        Err(_) => Err(super::internal()),
    }
}

/// A stage in the path that is not one of `daemon.stages` names no group: 404.
fn known_stage(shared: &Shared, stage: &str) -> Result<(), Problem> {
    crate::admin::stage_of(&shared.config(), stage)
        .map(|_| ())
        .map_err(|e| Problem::not_found(e.to_string()))
}

/// List the groups.
#[utoipa::path(get, path = "/v1/admin/groups", tag = "groups", params(ListQuery),
    responses((status = 200, description = "The `groups list` items, by stage then name", body = Page<GroupListItem>),
              (status = 400, body = Problem), (status = 401, body = Problem)))]
pub(super) async fn list(
    Extract(shared): Extract<Arc<Shared>>,
    Q(query): Q<ListQuery>,
) -> Result<Json<Page<GroupListItem>>, Problem> {
    let config = shared.config();
    let stage = match &query.stage {
        Some(s) => Some(
            crate::admin::stage_of(&config, s).map_err(|e| Problem::bad_request(e.to_string()))?,
        ),
        None => None,
    };
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    };
    page.limit()?;
    let all = blocking(move || {
        let state = State::open_read_only(&config.daemon.state)?;
        Ok(views::group_list(&config, &state, stage.as_ref())?)
    })
    .await?;
    Ok(Json(page.page_of(all)?))
}

/// Create a group.
#[utoipa::path(post, path = "/v1/admin/groups", tag = "groups", request_body = CreateBody,
    responses((status = 201, description = "Created: the `groups show` document", body = GroupDoc),
              (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 409, description = "A group of that name exists in the stage", body = Problem),
              (status = 413, body = Problem), (status = 415, body = Problem),
              (status = 422, description = "A bad name or stage, or a role outside the catalogue", body = Problem)))]
pub(super) async fn create(
    Extract(shared): Extract<Arc<Shared>>,
    request: body::JsonBody<CreateBody>,
) -> Result<(StatusCode, Json<GroupDoc>), Problem> {
    let body = request.0;
    let group = CreateGroup {
        name: body.name,
        stage: body.stage,
        description: body.description,
        roles: body.roles,
    };
    let doc = edit(&shared, move |edits| edits.create(&group)).await?;
    Ok((StatusCode::CREATED, Json(doc)))
}

/// Show a group.
#[utoipa::path(get, path = "/v1/admin/groups/{stage}/{name}", tag = "groups",
    params(("stage" = String, Path, description = "The stage"), ("name" = String, Path, description = "The group's name, percent-encoded")),
    responses((status = 200, description = "The `groups show` document", body = GroupDoc),
              (status = 401, body = Problem), (status = 404, body = Problem)))]
pub(super) async fn show(
    Extract(shared): Extract<Arc<Shared>>,
    Segments((stage, name)): Segments<(String, String)>,
) -> Result<Json<GroupDoc>, Problem> {
    let config = shared.config();
    let doc = blocking(move || {
        let stage = crate::admin::stage_of(&config, &stage)
            .map_err(|e| Problem::not_found(e.to_string()))?;
        let name = crate::model::GroupName::parse(&name).map_err(|e| Problem::not_found(e.0))?;
        let state = State::open_read_only(&config.daemon.state)?;
        views::group_doc(&config, &state, &stage, &name)?.ok_or_else(|| {
            Problem::not_found(format!("no group {:?} in stage {stage}", name.as_str()))
        })
    })
    .await?;
    Ok(Json(doc))
}

/// Rename a group and/or change its description.
#[utoipa::path(patch, path = "/v1/admin/groups/{stage}/{name}", tag = "groups", request_body = UpdateBody,
    params(("stage" = String, Path, description = "The stage"), ("name" = String, Path, description = "The group's name, percent-encoded")),
    responses((status = 200, description = "The `groups show` document after the edit", body = GroupDoc),
              (status = 400, body = Problem), (status = 401, body = Problem), (status = 404, body = Problem),
              (status = 409, description = "A declared group, or the new name is taken", body = Problem),
              (status = 422, body = Problem)))]
pub(super) async fn update(
    Extract(shared): Extract<Arc<Shared>>,
    Segments((stage, name)): Segments<(String, String)>,
    request: body::JsonBody<UpdateBody>,
) -> Result<Json<GroupDoc>, Problem> {
    known_stage(&shared, &stage)?;
    let body = request.0;
    let doc = edit(&shared, move |edits| {
        edits.update(
            &stage,
            &name,
            body.name.as_deref(),
            body.description.as_deref(),
        )
    })
    .await?;
    Ok(Json(doc))
}

/// Add and remove roles.
#[utoipa::path(patch, path = "/v1/admin/groups/{stage}/{name}/roles", tag = "groups", request_body = EditBody,
    params(("stage" = String, Path, description = "The stage"), ("name" = String, Path, description = "The group's name, percent-encoded")),
    responses((status = 200, description = "The group's roles after the edit", body = RolesDoc),
              (status = 400, body = Problem), (status = 401, body = Problem), (status = 404, body = Problem),
              (status = 409, description = "A declared group", body = Problem),
              (status = 422, description = "A role outside the catalogue, or nothing to change", body = Problem)))]
pub(super) async fn roles(
    Extract(shared): Extract<Arc<Shared>>,
    Segments((stage, name)): Segments<(String, String)>,
    request: body::JsonBody<EditBody>,
) -> Result<Json<RolesDoc>, Problem> {
    known_stage(&shared, &stage)?;
    let body = request.0;
    let roles = edit(&shared, move |edits| {
        edits.roles(&stage, &name, &body.add, &body.remove)
    })
    .await?;
    Ok(Json(RolesDoc { roles }))
}

/// Add and remove direct members (the `direct` provenance only; an IdP's stays).
#[utoipa::path(patch, path = "/v1/admin/groups/{stage}/{name}/users", tag = "groups", request_body = EditBody,
    params(("stage" = String, Path, description = "The stage"), ("name" = String, Path, description = "The group's name, percent-encoded")),
    responses((status = 200, description = "What changed; all or nothing", body = UsersDoc),
              (status = 400, body = Problem), (status = 401, body = Problem), (status = 404, body = Problem),
              (status = 409, description = "A user who is not a direct member, or a stage a remote store serves", body = Problem),
              (status = 422, description = "A malformed user key, or nothing to change", body = Problem)))]
pub(super) async fn users(
    Extract(shared): Extract<Arc<Shared>>,
    Segments((stage, name)): Segments<(String, String)>,
    request: body::JsonBody<EditBody>,
) -> Result<Json<UsersDoc>, Problem> {
    known_stage(&shared, &stage)?;
    let body = request.0;
    let done = edit(&shared, move |edits| {
        edits.members(&stage, &name, &body.add, &body.remove)
    })
    .await?;
    Ok(Json(UsersDoc {
        added: done.added,
        already: done.already,
        removed: done
            .removed
            .into_iter()
            .map(|(user, remaining)| RemovedDoc {
                user,
                remaining: remaining.iter().map(ToString::to_string).collect(),
            })
            .collect(),
    }))
}

/// Delete a group.
#[utoipa::path(delete, path = "/v1/admin/groups/{stage}/{name}", tag = "groups", params(
        ("stage" = String, Path, description = "The stage"), ("name" = String, Path, description = "The group's name, percent-encoded"), DeleteQuery),
    responses((status = 200, description = "Deleted; who lost which roles", body = DeletedDoc),
              (status = 401, body = Problem), (status = 404, body = Problem),
              (status = 409, description = "Members remain (without remove_members=true; `members` lists them and their roles), a declared group, or a remote stage", body = Problem)))]
pub(super) async fn delete(
    Extract(shared): Extract<Arc<Shared>>,
    Segments((stage, name)): Segments<(String, String)>,
    Q(query): Q<DeleteQuery>,
) -> Result<Json<DeletedDoc>, Problem> {
    known_stage(&shared, &stage)?;
    let lost = edit(&shared, move |edits| {
        edits.delete(&stage, &name, query.remove_members)
    })
    .await?;
    Ok(Json(DeletedDoc {
        lost: lost
            .into_iter()
            .map(|l| super::problem::LostDoc {
                user: l.user,
                roles: l.roles,
            })
            .collect(),
    }))
}
