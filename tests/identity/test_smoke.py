async def test_login_and_me(factory, client):
    tenant = await factory.tenant("acme")
    ann = await factory.user(tenant)
    response = await client.get("/api/auth/me", headers=ann.headers)
    assert response.status_code == 200
    assert response.json()["email"] == ann.user.email
