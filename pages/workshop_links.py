"""Workshop links: the teacher makes an address that opens this server with a model, a prompt and pages pinned."""

import hmac
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import streamlit as st

from explorer.app_state import as_text, ensure_router
from explorer.serving import CONFIG, EXAMPLE_PROMPTS
from explorer.site_map import PAGE_NAMES, PAGES
from explorer.workshop import LinkError, Workshop, check, link, make_token

ensure_router()
st.title("Workshop links")
st.markdown("A workshop link opens this server with the model, the starting prompt and the pages you choose, and "
            "nothing else in its menus; students still type their own prompts. The link carries its settings, signed "
            "with the configuration's `links.secret`: students cannot change them, and a restart keeps links working.")
if CONFIG.links_required:
    st.info("Students: this server opens only through a workshop link. Open the one your teacher gave you.",
            icon=":material/link:")

if not st.session_state.get("teacher"):
    with st.form("unlock"):
        key = st.text_input("Teacher key", type="password", help="links.secret in the server's configuration file")
        if st.form_submit_button("Unlock"):
            if hmac.compare_digest(key.encode(), CONFIG.link_secret.encode()):
                st.session_state.teacher = True
                st.rerun()
            time.sleep(1)  # guessing the key one try per second gets nowhere
            st.error("That is not this server's teacher key.")
    st.stop()

shown = [page for page in PAGES if page.name in (CONFIG.pages or PAGE_NAMES)]
with st.form("workshop"):
    model = st.selectbox("Model", CONFIG.choices())
    prompt = st.text_area("Starting prompt", EXAMPLE_PROMPTS[0], height=100)
    pages = st.multiselect("Pages (students land on the first)", shown, default=shown[:1],
                           format_func=lambda page: f"{page.section} › {page.title}")
    hours = st.number_input("Expires after (hours; 0: never)", min_value=0.0, max_value=24.0 * 365, value=3.0)
    origin = urlsplit(st.context.url or "")
    server = st.text_input("The server's address, as students open it", f"{origin.scheme}://{origin.netloc}")
    made = st.form_submit_button("Make the link", type="primary")

if made:
    expires = datetime.now(UTC) + timedelta(hours=hours) if hours else None
    workshop = Workshop(model, prompt, tuple(page.name for page in pages), expires)
    try:
        check(workshop, CONFIG)
    except LinkError as e:
        st.error(as_text(str(e)))
        st.stop()
    st.code(link(server, make_token(workshop, CONFIG.link_secret)), language=None, wrap_lines=True)
    st.caption(f"Works until {expires:%Y-%m-%d %H:%M} UTC." if expires else "Works until links.secret changes.")
