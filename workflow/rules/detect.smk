# Detection: find every chromosome of each metaphase (classical segmentation) and
# compare with the VOC boxes of the dataset (docs/detection.md).


rule detect_evaluate:
    input:
        manifest=manifest_path("{dataset}"),
    output:
        metrics=f"{RESULTS}/detect/{{dataset}}/metrics.json",
        per_cell=f"{RESULTS}/detect/{{dataset}}/per_cell.csv",
        overlay=report(
            f"{RESULTS}/detect/{{dataset}}/overlay.png",
            caption="../report/detect_overlay.rst",
            category="Detection",
            subcategory="{dataset}",
        ),
    log:
        f"{RESULTS}/logs/detect_evaluate/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/detect_evaluate/{{dataset}}.tsv"
    conda:
        ENV
    threads: 1
    params:
        detect=config["detect"]["params"],
        overlay_cells=config["detect"]["overlay_cells"],
    script:
        "../scripts/detect_evaluate.py"


rule train_detector:
    input:
        manifest=manifest_path("{dataset}"),
        weights=detector_weights,
    output:
        model=f"{RESULTS}/detect/{{dataset}}/learned/model.keras",
        settings=f"{RESULTS}/detect/{{dataset}}/learned/detector.json",
        metrics=f"{RESULTS}/detect/{{dataset}}/learned/train_metrics.json",
        history=f"{RESULTS}/detect/{{dataset}}/learned/history.json",
        curves=f"{RESULTS}/detect/{{dataset}}/learned/curves.png",
    log:
        f"{RESULTS}/logs/train_detector/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_detector/{{dataset}}.tsv"
    conda:
        ENV_GPU if GPU["enabled"] else ENV
    threads: TRAIN_THREADS
    resources:
        **GPU_RESOURCES,
    params:
        job=detector_job,
    script:
        "../scripts/train_detector.py"


rule detect_learned_evaluate:
    input:
        manifest=manifest_path("{dataset}"),
        model=f"{RESULTS}/detect/{{dataset}}/learned/model.keras",
        settings=f"{RESULTS}/detect/{{dataset}}/learned/detector.json",
    output:
        metrics=f"{RESULTS}/detect/{{dataset}}/learned/metrics.json",
        per_cell=f"{RESULTS}/detect/{{dataset}}/learned/per_cell.csv",
        overlay=report(
            f"{RESULTS}/detect/{{dataset}}/learned/overlay.png",
            caption="../report/detect_overlay.rst",
            category="Detection",
            subcategory="{dataset} (learned)",
        ),
        pr=report(
            f"{RESULTS}/detect/{{dataset}}/learned/pr.png",
            caption="../report/detect_pr.rst",
            category="Detection",
            subcategory="{dataset} (learned)",
        ),
    log:
        f"{RESULTS}/logs/detect_learned_evaluate/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/detect_learned_evaluate/{{dataset}}.tsv"
    conda:
        ENV
    threads: TRAIN_THREADS
    params:
        detect=config["detect"]["params"],
        overlay_cells=config["detect"]["overlay_cells"],
    script:
        "../scripts/detect_evaluate.py"
