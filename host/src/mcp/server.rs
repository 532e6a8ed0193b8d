//! The MCP server: the tools of [`super::tools`] over a [`Session`], with
//! every call run on a blocking thread (the broker and the vault are
//! synchronous). Refusals and failures are tool errors with the same one
//! line the CLI prints; malformed arguments and unknown tools are protocol
//! errors; the server stays up either way.

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation, JsonObject,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::json;

use super::session::Session;
use super::tools::{self, DESCRIBE, INVOKE, LIST, text};

/// One stdio session's server.
pub struct McpServer {
    session: Arc<Session>,
    /// Offer one tool per capability too (`--tools-per-capability`).
    per_capability: bool,
    /// Answer bodies longer than this are cut, with a note.
    max_output_bytes: usize,
}

impl McpServer {
    pub fn new(session: Session, per_capability: bool, max_output_bytes: usize) -> Self {
        McpServer { session: Arc::new(session), per_capability, max_output_bytes }
    }

    /// `work` on a blocking thread.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Session) -> T + Send + 'static,
    ) -> Result<T, ErrorData> {
        let session = Arc::clone(&self.session);
        tokio::task::spawn_blocking(move || work(&session))
            .await
            .map_err(|_| ErrorData::internal_error("the call stopped unexpectedly", None))
    }

    async fn invoke(
        &self,
        capability: String,
        args: &JsonObject,
        client: String,
    ) -> Result<CallToolResult, ErrorData> {
        let call = tools::invocation(capability, args)?;
        let max = self.max_output_bytes;
        self.blocking(move |session| match session.invoke(call, &client) {
            Ok(answer) => tools::answer(&answer, max),
            Err(reason) => tools::failure(&reason),
        })
        .await
    }
}

/// The MCP client's name from its `initialize`, made safe for the audit
/// log (printable, at most 64 characters).
fn client_name(context: &RequestContext<RoleServer>) -> String {
    let name = context.peer.peer_info().map(|info| info.client_info.name.clone()).unwrap_or_default();
    let name: String = name.chars().filter(|c| !c.is_control()).take(64).collect();
    if name.trim().is_empty() { "(unnamed)".to_string() } else { name }
}

fn listed(value: serde_json::Value) -> CallToolResult {
    let text = serde_json::to_string_pretty(&value).unwrap_or_default();
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = Some(value);
    result
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        let mut info = ServerConfig::new(ServerCapabilities::builder().enable_tools().build());
        info.server_info = Implementation::from_build_env().with_title("aivault");
        info.server_info.name = "aivault".into();
        info.server_info.version = env!("CARGO_PKG_VERSION").into();
        info.instructions = Some(
            "Call APIs through aivault: list_capabilities shows what you may call, invoke makes the call. \
             aivault adds the credentials; you never see them, and you cannot change who you call as."
                .into(),
        );
        info
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let mut list = tools::general();
        if self.per_capability {
            let capabilities = self.blocking(|session| session.capabilities(None)).await?;
            let capabilities = capabilities.map_err(|e| ErrorData::internal_error(e, None))?;
            list.extend(tools::per_capability(&capabilities));
        }
        Ok(ListToolsResult::with_all_items(list))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let client = client_name(&context);
        let args = request.arguments.unwrap_or_default();
        let result = match request.name.as_ref() {
            LIST => {
                let provider = text(&args, "provider")?;
                self.blocking(move |session| match session.capabilities(provider.as_deref()) {
                    Ok(list) => listed(json!({ "capabilities": list })),
                    Err(reason) => tools::failure(&reason),
                })
                .await?
            }
            DESCRIBE => {
                let id =
                    text(&args, "id")?.ok_or_else(|| ErrorData::invalid_params("`id` is required", None))?;
                self.blocking(move |session| match session.describe(&id) {
                    Ok(info) => listed(json!(info)),
                    Err(reason) => tools::failure(&reason),
                })
                .await?
            }
            INVOKE => {
                let capability = text(&args, "capability")?
                    .ok_or_else(|| ErrorData::invalid_params("`capability` is required", None))?;
                self.invoke(capability, &args, client).await?
            }
            name if self.per_capability => {
                let name = name.to_string();
                let found = self
                    .blocking(move |session| {
                        session
                            .capabilities(None)
                            .map(|list| list.into_iter().find(|c| tools::tool_name(&c.id) == name))
                    })
                    .await?
                    .map_err(|e| ErrorData::internal_error(e, None))?;
                let capability = found
                    .ok_or_else(|| ErrorData::invalid_params(format!("no tool `{}`", request.name), None))?;
                self.invoke(capability.id, &args, client).await?
            }
            name => return Err(ErrorData::invalid_params(format!("no tool `{name}`"), None)),
        };
        Ok(result.into())
    }
}
