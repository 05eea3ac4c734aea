//! The floor object and its Worker: one SQLite read per request.

use worker::{
    Context, DurableObject, Env, Request, Response, Result, State, durable_object, event,
};

/// One object per name; it holds nothing but the SQLite it reads.
#[durable_object]
pub struct FloorObject {
    state: State,
}

impl std::fmt::Debug for FloorObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FloorObject").finish_non_exhaustive()
    }
}

impl DurableObject for FloorObject {
    fn new(state: State, _env: Env) -> Self {
        Self { state }
    }

    async fn fetch(&self, _request: Request) -> Result<Response> {
        let cursor = self.state.storage().sql().exec("SELECT 1", None)?;
        let rows = cursor.raw().count();
        Response::ok(rows.to_string())
    }
}

/// Forwards the request to the object named by its path.
#[event(fetch)]
async fn fetch(request: Request, env: Env, _context: Context) -> Result<Response> {
    let name = request.path();
    let stub = env
        .durable_object("FLOOR")?
        .id_from_name(&name)?
        .get_stub()?;
    stub.fetch_with_request(request).await
}
