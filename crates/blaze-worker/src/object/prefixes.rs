//! The folder object's listing of its subfolders (spec 15.2, `?prefixes`):
//! for a caller the rules let list the folder, one page of the delimited
//! prefixes R2 holds under the folder's keys.

use blaze_core::{Caller, Hub};
use blaze_protocol::Identity;
use worker::{Response, Result};

use super::{now, BlazeCollection};
use crate::entry::respond;
use crate::files_prefixes::{Listed, PrefixPage, MAX_PREFIXES};
use crate::files_sweep::key_prefix;
use crate::http_api;
use crate::http_types::{HttpRequest, HttpResponse};
use crate::log::{log_http, Who};
use crate::routing::Endpoint;
use crate::sql_storage::SqlStore;

impl BlazeCollection {
    /// Answers `page` for the caller `identity`: the folder's listing query
    /// (`endpoint`, sent by the Worker) is run as the caller first, so a
    /// caller the rules do not let list the folder learns no name.
    pub(super) async fn prefixes(
        &self,
        page: PrefixPage,
        endpoint: &Endpoint,
        hreq: &HttpRequest,
        identity: Identity,
        started: u64,
    ) -> Result<Response> {
        if !matches!(endpoint, Endpoint::Query { .. }) {
            return Response::error("not a listing of subfolders", 400);
        }
        let mut caller = Caller::new(identity);
        let mut counted = 0;
        let ask = |hub: &mut Hub<SqlStore>, caller: &Caller| {
            http_api::answer(hub, caller, endpoint, hreq, now())
        };
        let allowed = self.answer_http(&mut caller, ask, &mut counted).await;
        if counted > 0 {
            self.live(None)?.http_fetched -= counted;
        }
        let allowed = allowed?;
        let answer = if allowed.error.is_some() {
            allowed
        } else {
            self.list_prefixes(&page).await?
        };
        let who = Who::Identity(&caller.identity);
        log_http(hreq, &answer, who, now().saturating_sub(started));
        respond(answer)
    }

    /// One listing of the folder's keys from `page`'s position, as names.
    async fn list_prefixes(&self, page: &PrefixPage) -> Result<HttpResponse> {
        let prefix = key_prefix(&self.live(None)?.folder()?);
        let bucket = self.env.bucket("FILES")?;
        let mut list = bucket
            .list()
            .prefix(prefix.clone())
            .delimiter("/")
            .limit(MAX_PREFIXES);
        if let Some(start) = page.start_after(&prefix) {
            list = list.start_after(start);
        }
        let objects = list.execute().await?;
        let listed = Listed {
            prefixes: objects.delimited_prefixes(),
            last_key: objects.objects().last().map(|o| o.key()),
            truncated: objects.truncated(),
        };
        Ok(HttpResponse::ok(&page.answer(&prefix, listed)))
    }
}
