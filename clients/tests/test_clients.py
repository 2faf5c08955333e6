import io

import pytest
from django.core.management import CommandError, call_command

from clients.models import Client, token_hash
from clients.services import client_create, client_get_by_token, client_token_rotate

pytestmark = pytest.mark.django_db


def test_create_client_prints_token_alone_on_last_line_and_stores_only_hash():
    out, err = io.StringIO(), io.StringIO()
    call_command("create_client", "--name", "Acme", "--email", "ops@acme.test", stdout=out, stderr=err)
    token = out.getvalue().strip().splitlines()[-1]
    client = Client.objects.get(name="Acme")
    assert " " not in token and len(token) > 30
    assert client.token_hash == token_hash(token) and token not in client.token_hash
    assert client_get_by_token(token=token) == client


def test_create_client_token_authenticates(client):
    out = io.StringIO()
    call_command("create_client", "--name", "Acme", "--email", "ops@acme.test", stdout=out, stderr=io.StringIO())
    token = out.getvalue().strip().splitlines()[-1]
    r = client.get("/api/client/validate", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert r.status_code == 200 and r.json()["name"] == "Acme"


@pytest.mark.parametrize("args,message", [(["--name", " ", "--email", "a@example.com"], "--name"),
                                          (["--name", "A", "--email", "nope"], "--email")])
def test_create_client_rejects_bad_input(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("create_client", *args, stdout=io.StringIO(), stderr=io.StringIO())
    assert Client.objects.count() == 0


def test_rotate_invalidates_old_token():
    client, old = client_create(name="A", email="a@example.com")
    new = client_token_rotate(client=client)
    assert client_get_by_token(token=old) is None
    assert client_get_by_token(token=new) == client


def test_admin_rotate_action_shows_new_token_once(admin_client):
    client, old = client_create(name="A", email="a@example.com")
    r = admin_client.post(
        "/admin/clients/client/", {"action": "rotate_token", "_selected_action": [str(client.pk)]}, follow=True
    )
    assert r.status_code == 200
    messages = [str(m) for m in r.context["messages"]]
    assert len(messages) == 1 and "shown once" in messages[0]
    new = messages[0].rsplit(": ", 1)[1]
    assert client_get_by_token(token=new) == client and client_get_by_token(token=old) is None


def test_admin_add_client_shows_token(admin_client):
    r = admin_client.post("/admin/clients/client/add/", {"name": "B", "email": "b@example.com", "is_active": "on"}, follow=True)
    assert r.status_code == 200
    token = [str(m) for m in r.context["messages"] if "shown once" in str(m)][0].rsplit(": ", 1)[1]
    assert client_get_by_token(token=token).name == "B"


def test_bootstrap_demo_prints_working_token():
    out = io.StringIO()
    call_command("bootstrap_demo", stdout=out)
    call_command("bootstrap_demo", stdout=out)
    token = out.getvalue().strip().splitlines()[-1].rsplit(" ", 1)[1]
    assert Client.objects.filter(email="demo@example.com").count() == 1
    assert client_get_by_token(token=token).name == "Demo"
