//! The card's trussed platform: trussed's virtual platform (all three stores in RAM, so a
//! started card is factory fresh) with the backends piv-authenticator needs: trussed-auth for
//! the PIN and PUK, trussed-staging for chunked files, wrapping keys to files and HPKE.

use piv_authenticator::{Authenticator, Options};
use trussed::ClientImplementation;
use trussed::backend::{Backend as _, BackendId};
use trussed::pipe::{ServiceEndpoint, TrussedChannel};
use trussed::platform::{Platform, Syscall};
use trussed::serde_extensions::{ExtensionDispatch, ExtensionId, ExtensionImpl};
use trussed::service::{Service, ServiceResources};
use trussed::types::{Context, CoreContext};
use trussed::virt::{self, StoreConfig};
use trussed_auth::AuthExtension;
use trussed_auth_backend::{AuthBackend, AuthContext, FilesystemLayout};
use trussed_chunked::ChunkedExtension;
use trussed_core::Error;
use trussed_core::api::{Reply, Request, reply, request};
use trussed_core::types::{Bytes, Location};
use trussed_hpke::HpkeExtension;
use trussed_staging::{StagingBackend, StagingContext};
use trussed_wrap_key_to_file::WrapKeyToFileExtension;

/// The PIV application on the card's trussed client.
pub(crate) type Piv<'a> = Authenticator<ClientImplementation<'a, InlineService<'a>, Dispatch>>;

/// The custom backends, asked before trussed's core backend.
const BACKENDS: &[BackendId<Backend>] = &[
    BackendId::Custom(Backend::Staging),
    BackendId::Custom(Backend::Auth),
    BackendId::Core,
];

/// The client's trussed service, run in the caller's thread: each request is answered
/// before the client polls for the reply. (trussed's own virt runner serves requests from a
/// thread that sleeps 1 ms between looks while the client spins on the reply: a PIV command
/// makes dozens of requests, so that cost milliseconds of waiting and a core of spinning per
/// command.)
pub(crate) struct InlineService<'a> {
    service: Service<virt::Platform<'a>, Dispatch>,
    endpoint: ServiceEndpoint<'a, Backend, DispatchContext>,
}

impl Syscall for InlineService<'_> {
    fn syscall(&mut self) {
        self.service
            .process(std::slice::from_mut(&mut self.endpoint));
    }
}

/// Runs `f` with a factory-fresh PIV application whose storage lives (and dies) with the call.
pub(crate) fn with_piv<R>(f: impl FnOnce(Piv<'_>) -> R) -> R {
    virt::with_platform(StoreConfig::ram(), |platform| {
        // The auth backend derives its PIN-protected keys from this "hardware" key.
        let dispatch = Dispatch {
            auth: AuthBackend::with_hw_key(
                Location::Internal,
                Bytes::from(b"emulated piv card"),
                FilesystemLayout::V0,
            ),
            staging: StagingBackend::new(),
        };
        let channel = TrussedChannel::new();
        let (requester, responder) = channel.split().expect("a new channel splits once");
        let context = CoreContext::new("piv".try_into().expect("a short client id"));
        let syscall = InlineService {
            service: Service::with_dispatch(platform, dispatch),
            endpoint: ServiceEndpoint::new(responder, context, BACKENDS),
        };
        let client = ClientImplementation::new(requester, syscall, None);
        f(Authenticator::new(client, Options::default()))
    })
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Backend {
    Auth,
    Staging,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Extension {
    Auth,
    WrapKeyToFile,
    Chunked,
    Hpke,
}

impl TryFrom<u8> for Extension {
    type Error = Error;

    fn try_from(id: u8) -> Result<Self, Error> {
        Ok(match id {
            0 => Self::Auth,
            1 => Self::WrapKeyToFile,
            2 => Self::Chunked,
            3 => Self::Hpke,
            _ => return Err(Error::InternalError),
        })
    }
}

impl From<Extension> for u8 {
    fn from(extension: Extension) -> Self {
        extension as u8
    }
}

#[derive(Debug)]
pub(crate) struct Dispatch {
    auth: AuthBackend,
    staging: StagingBackend,
}

#[derive(Default)]
pub(crate) struct DispatchContext {
    auth: AuthContext,
    staging: StagingContext,
}

impl ExtensionDispatch for Dispatch {
    type BackendId = Backend;
    type Context = DispatchContext;
    type ExtensionId = Extension;

    fn core_request<P: Platform>(
        &mut self,
        backend: &Backend,
        ctx: &mut Context<DispatchContext>,
        request: &Request,
        resources: &mut ServiceResources<P>,
    ) -> Result<Reply, Error> {
        match backend {
            Backend::Auth => {
                self.auth
                    .request(&mut ctx.core, &mut ctx.backends.auth, request, resources)
            }
            Backend::Staging => {
                self.staging
                    .request(&mut ctx.core, &mut ctx.backends.staging, request, resources)
            }
        }
    }

    fn extension_request<P: Platform>(
        &mut self,
        backend: &Backend,
        extension: &Extension,
        ctx: &mut Context<DispatchContext>,
        request: &request::SerdeExtension,
        resources: &mut ServiceResources<P>,
    ) -> Result<reply::SerdeExtension, Error> {
        let core = &mut ctx.core;
        match (backend, extension) {
            (Backend::Auth, Extension::Auth) => {
                <AuthBackend as ExtensionImpl<AuthExtension>>::extension_request_serialized(
                    &mut self.auth,
                    core,
                    &mut ctx.backends.auth,
                    request,
                    resources,
                )
            }
            (Backend::Staging, Extension::WrapKeyToFile) => <StagingBackend as ExtensionImpl<
                WrapKeyToFileExtension,
            >>::extension_request_serialized(
                &mut self.staging,
                core,
                &mut ctx.backends.staging,
                request,
                resources,
            ),
            (Backend::Staging, Extension::Chunked) => {
                <StagingBackend as ExtensionImpl<ChunkedExtension>>::extension_request_serialized(
                    &mut self.staging,
                    core,
                    &mut ctx.backends.staging,
                    request,
                    resources,
                )
            }
            (Backend::Staging, Extension::Hpke) => {
                <StagingBackend as ExtensionImpl<HpkeExtension>>::extension_request_serialized(
                    &mut self.staging,
                    core,
                    &mut ctx.backends.staging,
                    request,
                    resources,
                )
            }
            _ => Err(Error::RequestNotAvailable),
        }
    }
}

impl ExtensionId<AuthExtension> for Dispatch {
    type Id = Extension;
    const ID: Extension = Extension::Auth;
}

impl ExtensionId<WrapKeyToFileExtension> for Dispatch {
    type Id = Extension;
    const ID: Extension = Extension::WrapKeyToFile;
}

impl ExtensionId<ChunkedExtension> for Dispatch {
    type Id = Extension;
    const ID: Extension = Extension::Chunked;
}

impl ExtensionId<HpkeExtension> for Dispatch {
    type Id = Extension;
    const ID: Extension = Extension::Hpke;
}
