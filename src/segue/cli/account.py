"""``segue login`` and ``segue logout``: the user's authorization to save playlists in Spotify."""

from __future__ import annotations

from pathlib import Path

import typer

from segue.cli._console import err, fail, out
from segue.cli.core import home_of
from segue.core.errors import SegueError
from segue.core.home import Home

#: Exit code when the command cannot start for want of credentials or authorization.
EXIT_NEEDS_SETUP = 2


def interactive_login(credentials: str | None, *, open_browser: bool, home: Home) -> None:
    """Run the PKCE login on the terminal: the URL on stderr, the pasted redirect from stdin."""
    from segue.providers.spotify_save import login

    login(
        ask=lambda prompt: typer.prompt(prompt, err=True),
        say=lambda text: err.print(text, markup=False, highlight=False),
        credentials_path=credentials,
        open_browser=open_browser,
        home=home,
    )


def register(app: typer.Typer) -> None:
    @app.command()
    def login(
        ctx: typer.Context,
        credentials: Path | None = typer.Option(
            None, "--credentials", help="A Spotify.yaml with 'Client_id:' (the app's id)."
        ),
        browser: bool = typer.Option(
            True, "--browser/--no-browser", help="Open the authorization page in a browser."
        ),
    ) -> None:
        """Allow segue to create playlists in your Spotify account (saved for `--save-playlist`).

        Prints a URL to open (on any machine); after you allow segue, paste back the URL the
        browser was sent to. The token is kept in segue's home, readable by you only.
        """
        from segue.providers.credentials import CredentialsError
        from segue.providers.spotify_save import NeedsLogin, token_path

        home = home_of(ctx)
        try:
            interactive_login(
                str(credentials) if credentials else None, open_browser=browser, home=home
            )
        except (CredentialsError, NeedsLogin) as exc:
            raise fail(str(exc), EXIT_NEEDS_SETUP) from None
        except SegueError as exc:
            raise fail(str(exc)) from None
        out.print(f"logged in: the authorization is saved in {token_path(home)}", markup=False)

    @app.command()
    def logout(ctx: typer.Context) -> None:
        """Forget the saved Spotify authorization (and say how to revoke it on Spotify's side)."""
        from segue.providers.spotify_save import APPS_PAGE, token_path
        from segue.providers.spotify_save import logout as forget

        home = home_of(ctx)
        if forget(home):
            out.print(f"deleted {token_path(home)}", markup=False)
        else:
            out.print("not logged in: nothing to delete", markup=False)
        out.print(
            f"to revoke segue's access on Spotify's side too, remove it at {APPS_PAGE}",
            markup=False,
        )
