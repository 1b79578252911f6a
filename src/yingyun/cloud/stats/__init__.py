"""Operations statistics (运营统计) of `GET /api/v1/stats`: service.py sums, router.py serves."""
