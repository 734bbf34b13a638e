"""dagster-webserver on loopback serves our code location; its GraphQL API lists our assets."""

from tests.e2e.servers import dagster_webserver, graphql, wait_http

EXPECTED = {
    "titles",
    "shots",
    "video_embeddings",
    "audio_embeddings",
    "text_embeddings",
    "title_metadata_embedding",
    "fused_shots",
    "encoder_checkpoint",
    "contextual_embeddings",
    "title_embeddings",
    "linear_probes",
    "ann_index",
}


def test_webserver_answers_and_graphql_lists_our_assets(tmp_path):
    with dagster_webserver(tmp_path) as (port, proc, log):
        page = wait_http(port, "/asset-groups", proc, log, timeout=30)
        assert "<html" in page.lower()
        data = graphql(port, "{ assetNodes { assetKey { path } groupName isPartitioned } }")
        nodes = {n["assetKey"]["path"][-1]: n for n in data["data"]["assetNodes"]}
        assert set(nodes) == EXPECTED
        assert nodes["contextual_embeddings"]["groupName"] == "serving"
        assert nodes["shots"]["isPartitioned"] and not nodes["encoder_checkpoint"]["isPartitioned"]
        sensors = graphql(
            port,
            "{ sensorsOrError(repositorySelector: {repositoryName: "
            '"__repository__", repositoryLocationName: "mediafm"}) '
            "{ ... on Sensors { results { name } } } }",
        )
        names = {s["name"] for s in sensors["data"]["sensorsOrError"]["results"]}
        assert {"title_arrival_sensor", "reembed_on_new_checkpoint"} <= names
    assert proc.returncode is not None
