# Overlapping chromosome pairs (4-class semantic segmentation): compose labelled pairs
# from the single chromosomes of an ingested dataset (both from the same split, by
# cell), train one segmentation model per (dataset, model) as an MLflow child run,
# evaluate IoU on the test pairs. docs/segmentation.md


rule make_overlaps:
    input:
        manifest=manifest_path("{dataset}"),
    output:
        train=pairs_file("train"),
        val=pairs_file("val"),
        test=pairs_file("test"),
        summary="results/overlaps/{dataset}/pairs/summary.json",
        preview=report(
            "results/overlaps/{dataset}/pairs/preview.png",
            caption="../report/overlaps_preview.rst",
            category="Overlapping pairs",
            subcategory="{dataset}",
            labels={"model": "none", "figure": "generated pairs"},
        ),
    log:
        "results/logs/make_overlaps/{dataset}.log",
    benchmark:
        "results/benchmarks/make_overlaps/{dataset}.tsv"
    conda:
        ENV
    threads: 1
    params:
        kind=lambda wildcards: config["datasets"][wildcards.dataset]["kind"],
        counts=OVERLAPS["pairs"],
        generate=OVERLAPS["generate"],
        seed=SEED,
    script:
        "../scripts/make_overlaps.py"


rule train_segmentation:
    input:
        train=pairs_file("train"),
        val=pairs_file("val"),
    output:
        model="results/overlaps/{dataset}/{seg_model}/model.keras",
        metrics="results/overlaps/{dataset}/{seg_model}/metrics.json",
        history="results/overlaps/{dataset}/{seg_model}/history.json",
        curves="results/overlaps/{dataset}/{seg_model}/curves.png",
    log:
        "results/logs/train_segmentation/{dataset}/{seg_model}.log",
    benchmark:
        "results/benchmarks/train_segmentation/{dataset}/{seg_model}.tsv"
    conda:
        ENV_GPU if GPU["enabled"] else ENV
    threads: TRAIN_THREADS
    resources:
        **TRAIN_RESOURCES,
    params:
        job=segmentation_train_job,
    script:
        "../scripts/train.py"


rule evaluate_segmentation:
    input:
        model="results/overlaps/{dataset}/{seg_model}/model.keras",
        test=pairs_file("test"),
    output:
        metrics="results/overlaps/{dataset}/{seg_model}/test/metrics.json",
        per_class="results/overlaps/{dataset}/{seg_model}/test/per_class.csv",
        samples=report(
            "results/overlaps/{dataset}/{seg_model}/test/samples.png",
            caption="../report/overlaps_samples.rst",
            category="Overlapping pairs",
            subcategory="{dataset}",
            labels={"model": "{seg_model}", "figure": "test segmentations"},
        ),
    log:
        "results/logs/evaluate_segmentation/{dataset}/{seg_model}.log",
    benchmark:
        "results/benchmarks/evaluate_segmentation/{dataset}/{seg_model}.tsv"
    conda:
        ENV
    threads: TRAIN_THREADS
    params:
        job=segmentation_job,
    script:
        "../scripts/evaluate.py"
