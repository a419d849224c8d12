//! The card's trussed platform: trussed's virtual platform (all three stores in RAM, so a
//! started card is factory fresh) with the backends piv-authenticator needs: trussed-auth for
//! the PIN and PUK, trussed-staging for chunked files, wrapping keys to files and HPKE.

use piv_authenticator::{Authenticator, Options};
use trussed::backend::{Backend as _, BackendId};
use trussed::platform::Platform;
use trussed::serde_extensions::{ExtensionDispatch, ExtensionId, ExtensionImpl};
use trussed::service::ServiceResources;
use trussed::types::Context;
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
pub(crate) type Piv<'a> = Authenticator<virt::Client<'a, Dispatch>>;

/// The custom backends, asked before trussed's core backend.
const BACKENDS: &[BackendId<Backend>] = &[
    BackendId::Custom(Backend::Staging),
    BackendId::Custom(Backend::Auth),
    BackendId::Core,
];

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
        platform.run_client_with_backends("piv", dispatch, BACKENDS, |client| {
            f(Authenticator::new(client, Options::default()))
        })
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
